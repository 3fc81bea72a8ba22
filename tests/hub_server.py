"""A small Hugging Face Hub-compatible server for the tests (standard library only).

It speaks the part of the Hub HTTP API that the real ``huggingface_hub`` and ``transformers`` clients use to
push and pull a repository (see /work/shared/docs/HUB.md): repo creation, preupload, the Git-LFS batch API
(with one-time upload URLs, as S3 pre-signed URLs are), ndjson commits, branches, repo info, tree listing
and ``resolve`` downloads with the ``X-Repo-Commit`` / ``ETag`` / ``X-Linked-Etag`` headers. Users are bearer
tokens; private repos are invisible (404 ``RepoNotFound``) to everyone but their owner; writes to someone
else's namespace are refused with 403.

    with HubServer(tokens={"hf_alice": "alice", "hf_bob": "bob"}) as hub:
        hub.url                     # http://127.0.0.1:PORT, for HF_ENDPOINT
        hub.upload_mode = "regular" # every file inline in the commit (the default client, Xet on, works)

Blobs live in a temporary folder (content-addressed by sha256), repo metadata in memory. The server only
listens on 127.0.0.1, never answers 5xx (the client retries those with back-off), bounds request bodies and
socket idle time, and records every request in ``requests`` so a test can bound their number.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HubServer", "git_blob_sha1"]

MAX_BODY = 256 * 1024 * 1024
# Files the real Hub's default .gitattributes routes through LFS (a subset), plus anything binary or large.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".npy", ".npz", ".model",
                ".msgpack", ".pkl", ".gz", ".zip", ".tar", ".parquet", ".arrow", ".gguf")
LFS_MIN_SIZE = 10 * 1024 * 1024
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: sha1 of ``b"blob <size>\\0" + data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class _File:
    size: int
    sha256: str
    lfs: bool

    def git_oid(self, data_sha1: str | None = None) -> str:
        return git_blob_sha1(_lfs_pointer(self.sha256, self.size)) if self.lfs else data_sha1


@dataclass
class _Commit:
    oid: str
    parent: str | None
    files: dict[str, _File]
    title: str
    message: str
    date: str


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created: str
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit oid
    commits: dict[str, _Commit] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]


class HubError(Exception):
    """An HTTP error answer: status, message, and the ``X-Error-Code`` the client keys on."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class HubServer:
    """A Hub-compatible HTTP server on ``127.0.0.1`` in a background thread.

    Args:
        tokens: bearer token -> user name. Requests without a token are anonymous (read public repos only).
        upload_mode: ``"auto"`` (binary files and known weight suffixes go through Git-LFS, as on the Hub;
            the client then needs ``HF_HUB_DISABLE_XET``) or ``"regular"`` (every file inline in the commit;
            works with the client's default, Xet-enabled settings). May be changed while running.
        root: folder for blob storage; a temporary folder (removed by ``stop``) if None.

    Attributes:
        url: ``http://127.0.0.1:PORT``, set by ``start``.
        requests: ``(method, path, status)`` of every request served, in order.
    """

    def __init__(self, tokens: dict[str, str] | None = None, upload_mode: str = "auto", root: str | None = None):
        if upload_mode not in ("auto", "regular"):
            raise ValueError(f"upload_mode must be 'auto' or 'regular', got {upload_mode!r}")
        self.tokens = dict(tokens or {})
        self.upload_mode = upload_mode
        self._own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="w2vformer-hub-")
        os.makedirs(os.path.join(self.root, "blobs"), exist_ok=True)
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.requests: list[tuple[str, str, int]] = []
        self._upload_tickets: dict[str, tuple[str, int]] = {}  # ticket -> (sha256, size)
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> str:
        """Bind a free port on 127.0.0.1, serve in a daemon thread, and return the base URL."""
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hub-server", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and remove the temporary storage."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "HubServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- storage helpers
    def _blob_path(self, sha256: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise HubError(400, f"invalid sha256 oid {sha256!r}")
        return os.path.join(self.root, "blobs", sha256)

    def _store(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self._blob_path(sha)
        if not os.path.exists(path):
            tmp = f"{path}.{secrets.token_hex(4)}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return sha

    def _read(self, sha256: str) -> bytes:
        with open(self._blob_path(sha256), "rb") as f:
            return f.read()

    def _entry(self, path: str, f: _File) -> dict:
        oid = f.git_oid(git_blob_sha1(self._read(f.sha256)) if not f.lfs else None)
        out = {"type": "file", "path": path, "size": f.size, "oid": oid}
        if f.lfs:
            out["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(_lfs_pointer(f.sha256, f.size))}
        return out

    # ---------------------------------------------------------------- access control
    def user_for(self, auth_header: str | None) -> str | None:
        if not auth_header:
            return None
        token = auth_header.split(" ", 1)[-1].strip()
        user = self.tokens.get(token)
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header", None)
        return user

    def get_repo(self, repo_type: str, repo_id: str, user: str | None, write: bool = False) -> _Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and user != repo.namespace):
            # The Hub answers 401 + RepoNotFound for a repo you may not see: it does not reveal that it exists.
            raise HubError(401 if user is None else 404, f"Repository Not Found for url: {repo_id}.", "RepoNotFound")
        if write and user != repo.namespace:
            if user is None:
                raise HubError(401, "You must be authenticated to write to a repository.", None)
            raise HubError(403, f"You don't have the rights to create a commit in {repo_id!r}: it belongs to "
                                f"{repo.namespace!r}, not {user!r}.", None)
        return repo

    def resolve(self, repo: _Repo, revision: str) -> _Commit:
        """Branch name, full commit oid, or a unique prefix of at least 7 hex digits."""
        revision = unquote(revision)
        if revision in repo.branches:
            return repo.commits[repo.branches[revision]]
        if revision.startswith("refs/heads/") and revision[11:] in repo.branches:
            return repo.commits[repo.branches[revision[11:]]]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            hits = [c for oid, c in repo.commits.items() if oid.startswith(revision)]
            if len(hits) == 1:
                return hits[0]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _new_commit(self, repo: _Repo, parent: _Commit | None, files: dict[str, _File], title: str,
                    message: str) -> _Commit:
        tree = json.dumps(sorted((p, f.sha256, f.lfs) for p, f in files.items()))
        seed = f"{repo.repo_id}\n{parent.oid if parent else ''}\n{tree}\n{title}\n{message}\n{time.time_ns()}"
        commit = _Commit(hashlib.sha1(seed.encode()).hexdigest(), parent.oid if parent else None, files, title,
                         message, _now())
        repo.commits[commit.oid] = commit
        return commit

    def _upload_mode_for(self, path: str, size: int, sample: bytes) -> str:
        if self.upload_mode == "regular":
            return "regular"
        if path.lower().endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE or b"\0" in sample:
            return "lfs"
        return "regular"


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a connection may sit idle
    server_version = "w2vformer-test-hub/1.0"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # ---------------------------------------------------------------- plumbing
    def _body(self) -> bytes:
        return self._raw_body

    def _read_body(self) -> bytes:
        """Read the whole request body up front, so an early error answer never leaves bytes on a keep-alive
        connection (they would be parsed as the next request)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise HubError(413, f"request body over {MAX_BODY} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise HubError(413, f"request body of {length} bytes is over {MAX_BODY}")
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> dict:
        raw = self._body()
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError as e:
            raise HubError(400, f"request body is not JSON: {e}") from None

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str | None = None):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        with self.hub._lock:
            self.hub.requests.append((self.command, self.path, status))

    def _send_json(self, obj, status: int = 200, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode(), headers, "application/json")

    def _dispatch(self):
        try:
            self._raw_body = self._read_body()
        except HubError as e:
            self.close_connection = True  # the unread rest of the body makes the connection unusable
            self._send_json({"error": e.message}, e.status, {"X-Error-Message": e.message, "Connection": "close"})
            return
        try:
            parts = urlsplit(self.path)
            segs = [unquote(s) for s in parts.path.split("/")[1:]]  # unquote only after splitting
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if any(s in ("", ".", "..") for s in segs[:-1]):
                raise HubError(400, f"malformed path {parts.path!r}")
            user = self.hub.user_for(self.headers.get("Authorization"))
            self._route(self.command, segs, query, user)
        except HubError as e:
            headers = {"X-Error-Message": e.message}
            if e.code:
                headers["X-Error-Code"] = e.code
            self._send_json({"error": e.message}, e.status, headers)
        except (ValueError, KeyError, TypeError) as e:  # malformed request: a 4xx, never a retried 5xx
            self._send_json({"error": f"bad request: {e!r}"}, 400, {"X-Error-Message": f"bad request: {e!r}"})

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _dispatch

    # ---------------------------------------------------------------- routing
    def _route(self, method: str, segs: list[str], query: dict, user: str | None):
        hub = self.hub
        if segs[:1] == ["api"]:
            return self._api(method, segs[1:], query, user)
        if segs[:1] == ["__lfs"]:
            return self._lfs_transfer(method, segs[1:], query, user)
        repo_type = "model"
        if segs and segs[0] in ("datasets", "spaces"):
            repo_type, segs = REPO_TYPES[segs[0]], segs[1:]
        if len(segs) >= 2 and segs[1].endswith(".git") and segs[2:] == ["info", "lfs", "objects", "batch"]:
            repo_id = f"{segs[0]}/{segs[1][:-4]}"
            with hub._lock:
                repo = hub.get_repo(repo_type, repo_id, user, write=True)
            return self._lfs_batch(repo)
        if len(segs) >= 5 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(repo_type, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]), user)
        raise HubError(404, f"no route for {method} {self.path}")

    def _api(self, method: str, segs: list[str], query: dict, user: str | None):
        hub = self.hub
        if segs == ["whoami-v2"] and method == "GET":
            if user is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._send_json({"type": "user", "name": user, "fullname": user, "orgs": [],
                                    "auth": {"type": "access_token",
                                             "accessToken": {"displayName": "test", "role": "write"}}})
        if segs == ["validate-yaml"] and method == "POST":
            body = self._json_body()
            content = body.get("content", "")
            errors = [] if not content.startswith("---") or content.count("\n---") >= 1 else \
                [{"message": "unterminated YAML front matter"}]
            return self._send_json({"errors": errors, "warnings": []}, 200 if not errors else 400)
        if segs == ["repos", "create"] and method == "POST":
            return self._create_repo(self._json_body(), user)
        if segs == ["repos", "delete"] and method == "DELETE":
            body = self._json_body()
            repo_type = body.get("type") or "model"
            repo_id = f"{body.get('organization') or user}/{body['name']}"
            with hub._lock:
                hub.get_repo(repo_type, repo_id, user, write=True)
                del hub.repos[(repo_type, repo_id)]
            return self._send_json({})
        if len(segs) >= 3 and segs[0] in REPO_TYPES:
            repo_type, repo_id, rest = REPO_TYPES[segs[0]], f"{segs[1]}/{segs[2]}", segs[3:]
            return self._repo_api(method, repo_type, repo_id, rest, query, user)
        raise HubError(404, f"no API route for {method} {self.path}")

    # ---------------------------------------------------------------- repos
    def _create_repo(self, body: dict, user: str | None):
        hub = self.hub
        if user is None:
            raise HubError(401, "You must be authenticated to create a repository.")
        name, namespace = body.get("name"), body.get("organization") or user
        repo_type = body.get("type") or "model"
        if repo_type not in URL_PREFIX:
            raise HubError(400, f"invalid repo type {repo_type!r}")
        if not isinstance(name, str) or not NAME_RE.match(name) or not NAME_RE.match(namespace):
            raise HubError(400, f"invalid repo name {namespace}/{name}")
        repo_id = f"{namespace}/{name}"
        url = f"{hub.url}/{URL_PREFIX[repo_type]}{repo_id}"
        with hub._lock:
            existing = hub.repos.get((repo_type, repo_id))
            if existing is not None and (not existing.private or user == existing.namespace):
                return self._send_json({"error": "You already created this model repo", "url": url}, 409)
            if namespace != user:
                raise HubError(403, f"You don't have the rights to create a repository under {namespace!r}.")
            private = body.get("visibility") == "private" or bool(body.get("private"))
            repo = _Repo(repo_type, repo_id, private, _now())
            # A new repo has one commit with a .gitattributes, as on the Hub.
            gitattributes = b"".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n".encode() for s in LFS_SUFFIXES)
            init = hub._new_commit(repo, None, {".gitattributes": _File(len(gitattributes), hub._store(gitattributes),
                                                                         False)}, "initial commit", "")
            repo.branches["main"] = init.oid
            hub.repos[(repo_type, repo_id)] = repo
        return self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def _repo_info(self, repo: _Repo, commit: _Commit):
        siblings = [{"rfilename": p} for p in sorted(commit.files)]
        info = {"_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
                "modelId": repo.repo_id, "author": repo.namespace, "sha": commit.oid, "lastModified": commit.date,
                "createdAt": repo.created, "private": repo.private, "gated": False, "disabled": False,
                "downloads": 0, "likes": 0, "tags": [], "siblings": siblings}
        return self._send_json(info)

    def _repo_api(self, method: str, repo_type: str, repo_id: str, rest: list[str], query: dict, user: str | None):
        hub = self.hub
        with hub._lock:
            write = method in ("POST", "PUT", "DELETE") and rest[:1] not in (["paths-info"],)
            repo = hub.get_repo(repo_type, repo_id, user, write=write)
            if not rest and method == "GET":
                return self._repo_info(repo, hub.resolve(repo, "main"))
            if rest[:1] == ["revision"] and len(rest) >= 2 and method == "GET":
                return self._repo_info(repo, hub.resolve(repo, "/".join(rest[1:])))
            if rest[:1] == ["tree"] and len(rest) >= 2 and method == "GET":
                commit = hub.resolve(repo, rest[1])
                return self._tree(commit, "/".join(rest[2:]), query.get("recursive") in ("1", "true", "True"))
            if rest[:1] == ["paths-info"] and len(rest) == 2 and method == "POST":
                commit = hub.resolve(repo, rest[1])
                raw = self._body()
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    paths = json.loads(raw).get("paths", [])
                else:
                    paths = parse_qs(raw.decode()).get("paths", [])
                return self._send_json([hub._entry(p, commit.files[p]) for p in paths if p in commit.files])
            if rest[:1] == ["refs"] and method == "GET":
                branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid}
                            for b, oid in sorted(repo.branches.items())]
                return self._send_json({"branches": branches, "tags": [], "converts": []})
            if rest[:1] == ["commits"] and len(rest) == 2 and method == "GET":
                commit, out = hub.resolve(repo, rest[1]), []
                while commit is not None:
                    out.append({"id": commit.oid, "title": commit.title, "message": commit.message,
                                "authors": [{"user": repo.namespace}], "date": commit.date})
                    commit = repo.commits.get(commit.parent) if commit.parent else None
                return self._send_json(out)
            if rest[:1] == ["branch"] and len(rest) >= 2 and method == "POST":
                branch = "/".join(rest[1:])
                body = self._json_body()
                if branch in repo.branches:
                    raise HubError(409, f"Reference already exists: refs/heads/{branch}")
                repo.branches[branch] = hub.resolve(repo, body.get("startingPoint") or "main").oid
                return self._send_json({})
            if rest[:1] == ["branch"] and len(rest) >= 2 and method == "DELETE":
                branch = "/".join(rest[1:])
                if branch == "main" or branch not in repo.branches:
                    raise HubError(400 if branch == "main" else 404, f"cannot delete branch {branch!r}")
                del repo.branches[branch]
                return self._send_json({})
            if rest[:1] == ["settings"] and method == "PUT":
                body = self._json_body()
                if "private" in body or "visibility" in body:
                    repo.private = body.get("visibility", "private" if body.get("private") else "public") == "private"
                return self._send_json({})
            if rest[:1] == ["preupload"] and len(rest) == 2 and method == "POST":
                return self._preupload(repo, rest[1], query)
            if rest[:1] == ["commit"] and len(rest) == 2 and method == "POST":
                return self._commit(repo, rest[1], query)
            if rest[:1] == ["xet-write-token"] or rest[:1] == ["xet-read-token"]:
                raise HubError(400, "this test Hub does not implement Xet storage: set HF_HUB_DISABLE_XET=1, or "
                                    "start it with upload_mode='regular'")
        raise HubError(404, f"no API route for {method} {self.path}")

    def _tree(self, commit: _Commit, prefix: str, recursive: bool):
        prefix = prefix.strip("/")
        if prefix and prefix not in {os.path.dirname(p) for p in commit.files} and not any(
                p.startswith(prefix + "/") for p in commit.files):
            raise HubError(404, f"path {prefix!r} not found", "EntryNotFound")
        base = f"{prefix}/" if prefix else ""
        entries, folders = [], set()
        for path in sorted(commit.files):
            if not path.startswith(base):
                continue
            rel = path[len(base):].split("/")
            if len(rel) == 1 or recursive:
                entries.append(self.hub._entry(path, commit.files[path]))
            for depth in range(1, len(rel) if recursive else min(len(rel), 2)):
                folders.add(base + "/".join(rel[:depth]))
        entries += [{"type": "directory", "path": d, "size": 0,
                     "oid": hashlib.sha1(d.encode()).hexdigest()} for d in sorted(folders)]
        return self._send_json(entries)

    # ---------------------------------------------------------------- upload
    def _preupload(self, repo: _Repo, revision: str, query: dict):
        hub = self.hub
        if query.get("create_pr"):
            raise HubError(400, "pull requests are not supported by this test Hub")
        commit = hub.resolve(repo, revision)
        body = self._json_body()
        out = []
        for f in body.get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            mode = hub._upload_mode_for(f["path"], int(f["size"]), sample)
            existing = commit.files.get(f["path"])
            oid = None
            if existing is not None:
                oid = existing.sha256 if existing.lfs else git_blob_sha1(hub._read(existing.sha256))
            out.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return self._send_json({"files": out, "commitOid": commit.oid})

    def _lfs_batch(self, repo: _Repo):
        hub = self.hub
        body = self._json_body()
        if body.get("operation") != "upload":
            raise HubError(400, f"only the 'upload' LFS operation is supported, got {body.get('operation')!r}")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry = {"oid": oid, "size": size}
            path = hub._blob_path(oid)
            if not os.path.exists(path):
                ticket = secrets.token_urlsafe(16)
                with hub._lock:
                    hub._upload_tickets[ticket] = (oid, size)
                entry["actions"] = {
                    "upload": {"href": f"{hub.url}/__lfs/upload/{oid}?ticket={ticket}"},
                    "verify": {"href": f"{hub.url}/__lfs/verify/{repo.repo_id}"},
                }
            objects.append(entry)
        return self._send_json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                               headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_transfer(self, method: str, segs: list[str], query: dict, user: str | None):
        hub = self.hub
        if method == "PUT" and len(segs) == 2 and segs[0] == "upload":
            with hub._lock:
                ticket = hub._upload_tickets.pop(query.get("ticket", ""), None)
            if ticket is None or ticket[0] != segs[1]:
                raise HubError(403, "invalid or used upload ticket")
            data = self._body()
            sha = hashlib.sha256(data).hexdigest()
            if sha != ticket[0] or len(data) != ticket[1]:
                raise HubError(400, f"uploaded content has sha256 {sha} and {len(data)} bytes; expected "
                                    f"{ticket[0]} and {ticket[1]} bytes")
            hub._store(data)
            return self._send(200, b"", {"ETag": f'"{sha}"'})
        if method == "POST" and segs[:1] == ["verify"]:
            body = self._json_body()
            path = hub._blob_path(body["oid"])
            if not os.path.exists(path) or os.path.getsize(path) != int(body["size"]):
                raise HubError(404, f"LFS object {body['oid']} was not uploaded")
            return self._send_json({})
        raise HubError(404, f"no LFS route for {method} {self.path}")

    def _commit(self, repo: _Repo, revision: str, query: dict):
        hub = self.hub
        if query.get("create_pr"):
            raise HubError(400, "pull requests are not supported by this test Hub")
        branch = unquote(revision)
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch} (commits go to a branch)", "RevisionNotFound")
        head = repo.commits[repo.branches[branch]]
        files = dict(head.files)
        title, message = "", ""
        for line in self._body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                title, message = value.get("summary", ""), value.get("description", "")
                parent = value.get("parentCommit")
                if parent and not head.oid.startswith(parent):
                    raise HubError(412, f"A commit has happened since {parent}: the head of {branch!r} is "
                                        f"{head.oid}")
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"unsupported encoding {value.get('encoding')!r}")
                data = base64.b64decode(value["content"])
                files[value["path"]] = _File(len(data), hub._store(data), False)
            elif key == "lfsFile":
                oid, size = value["oid"], int(value["size"])
                path = hub._blob_path(oid)
                if not os.path.exists(path) or os.path.getsize(path) != size:
                    raise HubError(400, f"LFS object {oid} for {value['path']!r} was never uploaded")
                files[value["path"]] = _File(size, oid, True)
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: f for p, f in files.items() if not p.startswith(prefix)}
            else:
                raise HubError(400, f"unsupported commit operation {key!r}")
        if not title:
            raise HubError(400, "a commit needs a summary")
        commit = hub._new_commit(repo, head, files, title, message)
        repo.branches[branch] = commit.oid
        url = f"{hub.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"
        return self._send_json({"success": True, "commitOid": commit.oid, "commitUrl": f"{url}/commit/{commit.oid}",
                                "pullRequestUrl": None, "hookOutput": ""})

    # ---------------------------------------------------------------- download
    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str, user: str | None):
        hub = self.hub
        with hub._lock:
            repo = hub.get_repo(repo_type, repo_id, user)
            commit = hub.resolve(repo, revision)
            f = commit.files.get(path)
        if f is None:
            raise_headers = {"X-Repo-Commit": commit.oid, "X-Error-Code": "EntryNotFound",
                             "X-Error-Message": "Entry not found"}
            return self._send_json({"error": "Entry not found"}, 404, raise_headers)
        data = hub._read(f.sha256)
        headers = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
        if f.lfs:
            headers["X-Linked-Etag"] = f'"{f.sha256}"'
            headers["X-Linked-Size"] = f.size
            headers["ETag"] = f'"{f.sha256}"'
        else:
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                raise HubError(416, f"unsupported Range {rng!r}")
            if m.group(1):
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else len(data) - 1
            else:
                start, end = max(0, len(data) - int(m.group(2))), len(data) - 1
            if start >= len(data) and len(data):
                raise HubError(416, f"Range {rng!r} starts past the end ({len(data)} bytes)")
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        return self._send(status, data, headers, "application/octet-stream")
