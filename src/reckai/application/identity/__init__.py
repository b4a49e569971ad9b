"""Identity use cases (issue 3): onboarding, login and MFA, refresh and logout, passwords, users,
sessions and organization settings. docs/identity.md describes the flows and decisions."""
