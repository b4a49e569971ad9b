"""`reckai org create`: operators create an organization with its first admin (also when public
sign-up is switched off). `reckai org offboard`: operators tombstone an organization that leaves (docs/privacy.md,
"Offboarding"). `reckai org tier`: operators move an organization to another
subscription tier (nobody chooses one over the API; a downgrade below current usage is refused). `reckai org reset-mfa`: operators turn MFA off for a user who lost both
factors when no other administrator can (the API refuses a self-reset).

The admin's password is never taken from the command line (it would land in shell history and
`ps`): it comes from the environment variable RECKAI_ADMIN_PASSWORD or is asked for on the
terminal. Exit codes: 0 created, 2 refused (invalid input, code taken, weak password) or a
configuration problem, with one line on standard error.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any, TextIO

from reckai.application.context import RequestInfo
from reckai.application.errors import ApplicationError
from reckai.application.identity.organizations import SUBSCRIPTION_TIERS, onboard_organization
from reckai.bootstrap import Container

PASSWORD_ENV = "RECKAI_ADMIN_PASSWORD"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("org", help="manage organizations (operators)")
    commands = parser.add_subparsers(dest="org_command", required=True)
    create = commands.add_parser("create", help="create an organization and its first admin")
    create.add_argument("--name", required=True)
    create.add_argument("--code", required=True, help="unique sign-in code: lower-case letters, digits, '-'")
    create.add_argument("--domain")
    create.add_argument("--tier", default="standard", choices=sorted(SUBSCRIPTION_TIERS))
    create.add_argument("--admin-email", required=True)
    create.add_argument("--admin-name", required=True)
    create.set_defaults(handler=_run_create)
    reset = commands.add_parser("reset-mfa", help="turn MFA off for a user who lost both factors (operators)")
    reset.add_argument("--code", required=True, help="the organization's sign-in code")
    reset.add_argument("--email", required=True, help="the user's e-mail address")
    reset.set_defaults(handler=_run_reset_mfa)
    add_user = commands.add_parser("add-user", help="add a user with a provisional password, e.g. an "
                                   "organization's first checker (operators)")
    add_user.add_argument("--code", required=True, help="the organization's sign-in code")
    add_user.add_argument("--email", required=True)
    add_user.add_argument("--name", required=True)
    add_user.add_argument("--role", required=True, choices=["admin", "analyst", "auditor", "supervisor"])
    add_user.set_defaults(handler=_run_add_user)
    tier = commands.add_parser("tier", help="change an organization's subscription tier and quotas (operators)")
    tier.add_argument("--code", required=True, help="the organization's sign-in code")
    tier.add_argument("--tier", required=True, choices=sorted(SUBSCRIPTION_TIERS))
    tier.set_defaults(handler=_run_tier)
    offboard = commands.add_parser(
        "offboard", help="tombstone an organization that leaves: pseudonymise it, revoke its sessions, shred its "
        "keys, delete its stored objects; needs a completed organization export (operators; irreversible)")
    offboard.add_argument("--code", required=True, help="the organization's sign-in code")
    offboard.add_argument("--without-export", action="store_true",
                          help="offboard although no completed organization export exists (audited; needs --reason)")
    offboard.add_argument("--reason", help="why, with --without-export (one line, audited)")
    offboard.set_defaults(handler=_run_offboard)


def tier_command(container: Container, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Quotas and features change at once; audited as a system event (`organization.tier_changed`,
    metadata.by = operator). Exit 2 when refused, naming every quota the usage exceeds."""
    from reckai.application.identity.tiers import change_subscription_tier

    try:
        change = change_subscription_tier(
            container.database, container.audit_log, container.clock(), organization_code=args.code,
            tier=args.tier, request=RequestInfo(user_agent="reckai-cli", method="CLI", path="reckai org tier"))
    except ApplicationError as exc:
        details = "; ".join(f"{d.field}: {d.message}" for d in exc.details)
        print(f"reckai org tier: {exc.message}" + (f" ({details})" if details else ""), file=err)
        return 2
    quota = change.quota
    print(f"organization {args.code.strip().lower()}: {change.previous_tier} -> {change.tier} "
          f"(max_users {quota.max_users}, max_storage_gb {quota.max_storage_gb}, "
          f"max_jobs_per_month {quota.max_jobs_per_month}, max_file_size_mb {quota.max_file_size_mb})", file=out)
    return 0


def add_user_command(container: Container, args: argparse.Namespace, password: str, out: TextIO,
                     err: TextIO) -> int:
    """Over the API, an account that may approve needs another checker's approval; an organization
    whose admin is its only checker gets its first supervisor (or second admin) here. The password
    is provisional: the user changes it at first sign-in."""
    from reckai.application.identity.users import operator_add_user

    try:
        user = operator_add_user(
            container.identity, organization_code=args.code, email=args.email, name=args.name, role=args.role,
            password=password, request=RequestInfo(user_agent="reckai-cli", method="CLI", path="reckai org add-user"))
    except ApplicationError as exc:
        details = "; ".join(f"{d.field}: {d.message}" for d in exc.details)
        print(f"reckai org add-user: {exc.message}" + (f" ({details})" if details else ""), file=err)
        return 2
    print(f"added {user.role} {user.id} ({user.email}); the password must be changed at first sign-in", file=out)
    return 0


def _run_add_user(args: argparse.Namespace) -> int:
    password = _password("add-user", "Provisional password: ")
    if password is None:
        return 2
    return _with_container("add-user", lambda container: add_user_command(container, args, password, sys.stdout,
                                                                          sys.stderr))


def _password(command: str, prompt: str) -> str | None:
    """From RECKAI_ADMIN_PASSWORD, or asked twice on a terminal (never argv)."""
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        print(f"reckai org {command}: set {PASSWORD_ENV} or run on a terminal to be asked", file=sys.stderr)
        return None
    password = getpass.getpass(prompt)
    if password != getpass.getpass("Repeat: "):
        print(f"reckai org {command}: the passwords differ", file=sys.stderr)
        return None
    return password


def _run_tier(args: argparse.Namespace) -> int:
    return _with_container("tier", lambda container: tier_command(container, args, sys.stdout, sys.stderr))


def offboard_command(container: Container, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """docs/privacy.md, "Offboarding". Exit 0 offboarded (or, on a tombstone, its objects' deletion
    retried), 1 when some objects could not be deleted (run it again), 2 refused (unknown code, no
    export, legal hold, a bad override)."""
    from reckai.application.privacy.offboarding import offboard_organization

    if args.without_export and not args.reason:
        print("reckai org offboard: --without-export needs --reason", file=err)
        return 2
    if args.reason and not args.without_export:
        print("reckai org offboard: --reason goes with --without-export", file=err)
        return 2
    try:
        done = offboard_organization(
            container.privacy, organization_code=args.code,
            without_export_reason=args.reason if args.without_export else None,
            operator_settings=container.retention.operator_settings,
            request=RequestInfo(user_agent="reckai-cli", method="CLI", path="reckai org offboard"))
    except ApplicationError as exc:
        details = "; ".join(f"{d.field}: {d.message}" for d in exc.details)
        print(f"reckai org offboard: {exc.message}" + (f" ({details})" if details else ""), file=err)
        return 2
    if done.already_offboarded:
        print(f"organization {done.organization_id} was already offboarded; {done.objects_deleted} objects "
              "deleted now", file=out)
    else:
        basis = (f"export {done.export_id}" if done.export_id else
                 f"WITHOUT an export ({done.without_export_reason})")
        print(f"OFFBOARDED organization {done.organization_id} ({basis}): {done.users_deactivated} users "
              f"deactivated, {done.sessions_revoked} sessions revoked, {done.keys.mfa_secrets} MFA secrets and "
              f"{done.keys.recovery_codes} users' recovery codes shredded, {done.keys.data_keys} data keys shredded, "
              f"{done.objects_deleted} objects deleted", file=out)
    if done.objects_not_deleted:
        print(f"reckai org offboard: {len(done.objects_not_deleted)} objects could not be deleted "
              f"(first: {done.objects_not_deleted[0]}); run the command again", file=err)
        return 1
    return 0


def _run_offboard(args: argparse.Namespace) -> int:
    return _with_container("offboard", lambda container: offboard_command(container, args, sys.stdout, sys.stderr))


def reset_mfa_command(container: Container, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """For an organization whose only administrator lost the authenticator and the recovery codes
    (the API never lets anyone reset their own MFA). Audited as a system event."""
    from reckai.application.identity.mfa import operator_reset_mfa

    try:
        user, revoked = operator_reset_mfa(
            container.identity, organization_code=args.code, email=args.email,
            request=RequestInfo(user_agent="reckai-cli", method="CLI", path="reckai org reset-mfa"))
    except ApplicationError as exc:
        print(f"reckai org reset-mfa: {exc.message}", file=err)
        return 2
    print(f"MFA turned off for user {user.id} ({user.email}); {revoked} session(s) revoked; they can sign in "
          "with their password and enrol again", file=out)
    return 0


def _run_reset_mfa(args: argparse.Namespace) -> int:
    return _with_container("reset-mfa", lambda container: reset_mfa_command(container, args, sys.stdout, sys.stderr))


def _with_container(name: str, action: Any) -> int:
    from reckai.bootstrap import bootstrap
    from reckai.logging_setup import configure_logging
    from reckai.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        container = bootstrap(settings)
    except SettingsError as exc:
        print(f"reckai org {name}: {exc}", file=sys.stderr)
        return 2
    try:
        return int(action(container))
    finally:
        container.close()


def create_command(container: Container, args: argparse.Namespace, password: str, out: TextIO, err: TextIO) -> int:

    services = container.identity
    try:
        created = onboard_organization(
            services, name=args.name, code=args.code, domain=args.domain, subscription_tier=args.tier,
            admin_email=args.admin_email, admin_name=args.admin_name, admin_password=password,
            request=RequestInfo(user_agent="reckai-cli", method="CLI", path="reckai org create"), public=False)
    except ApplicationError as exc:
        details = "; ".join(f"{d.field}: {d.message}" for d in exc.details)
        print(f"reckai org create: {exc.message}" + (f" ({details})" if details else ""), file=err)
        return 2
    print(f"created organization {created.code} ({created.organization_id}); admin user {created.admin_user_id}",
          file=out)
    return 0


def _run_create(args: argparse.Namespace) -> int:
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        if not sys.stdin.isatty():
            print(f"reckai org create: set {PASSWORD_ENV} or run on a terminal to be asked", file=sys.stderr)
            return 2
        password = getpass.getpass("Admin password: ")
        if password != getpass.getpass("Repeat: "):
            print("reckai org create: the passwords differ", file=sys.stderr)
            return 2
    return _with_container("create", lambda container: create_command(container, args, password, sys.stdout,
                                                                       sys.stderr))
