"""File use cases (issue 4): upload, get, delete, download link, mapping, normalization.

docs/files.md describes the flow and the decisions."""

from reckai.application.context import Caller
from reckai.application.files.mapping import confirm_mapping, normalize_file_job, propose_mapping
from reckai.application.files.queries import delete_file, download_file_url, get_file, list_files
from reckai.application.files.services import FileServices
from reckai.application.files.upload import UploadForm, check_upload_allowed, upload_file, validate_form

__all__ = ["Caller", "FileServices", "UploadForm", "check_upload_allowed", "confirm_mapping", "delete_file",
           "download_file_url", "get_file", "list_files", "normalize_file_job", "propose_mapping", "upload_file",
           "validate_form"]
