"""The test Hub server (tests/hub_server.py) at the HTTP level, with the standard library's client only.

The round trips through the real huggingface_hub / transformers clients are in test_hub.py; these check the
protocol details those clients rely on and the server's own guarantees (errors are 4xx with X-Error-Code and never
5xx, a body is consumed even when the request is refused, one-time LFS tickets, ranges, keep-alive).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json

import pytest

from hub_server import HubServer, git_blob_sha1

A, B = "tok-a", "tok-b"


@pytest.fixture()
def server():
    with HubServer(tokens={A: "alice", B: "bob"}) as hub:
        yield hub


def request(hub, method, path, body=None, token=None, headers=None, conn=None):
    """One request; returns (status, headers dict, body bytes). ``conn`` reuses a keep-alive connection."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(hub.url.split("//")[1], timeout=10)
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    if own:
        conn.close()
    return out


def commit(hub, repo, lines, token=A, branch="main"):
    payload = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    return request(hub, "POST", f"/api/models/{repo}/commit/{branch}", payload, token,
                   {"Content-Type": "application/x-ndjson"})


def header(summary="c", parent=None):
    value = {"summary": summary, "description": ""}
    if parent:
        value["parentCommit"] = parent
    return {"key": "header", "value": value}


def add(path, data: bytes):
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


def test_create_commit_and_resolve_with_git_oids_and_ranges(server):
    status, _, body = request(server, "POST", "/api/repos/create", {"name": "r", "organization": None}, A)
    assert status == 200 and json.loads(body)["url"] == f"{server.url}/alice/r"
    status, _, body = request(server, "POST", "/api/repos/create", {"name": "r"}, A)
    assert status == 409 and json.loads(body)["url"] == f"{server.url}/alice/r"  # exist_ok reads it
    status, _, body = commit(server, "alice/r", [header("add"), add("dir/a.txt", b"hello world")])
    assert status == 200
    oid = json.loads(body)["commitOid"]
    assert len(oid) == 40 and json.loads(body)["commitUrl"].endswith(oid)

    status, h, data = request(server, "GET", "/alice/r/resolve/main/dir/a.txt")
    assert (status, data) == (200, b"hello world")
    assert h["x-repo-commit"] == oid and h["etag"] == f'"{git_blob_sha1(b"hello world")}"'
    status, h, data = request(server, "GET", f"/alice/r/resolve/{oid}/dir/a.txt", headers={"Range": "bytes=6-"})
    assert (status, data, h["content-range"]) == (206, b"world", "bytes 6-10/11")
    status, h, _ = request(server, "HEAD", "/alice/r/resolve/main/missing.txt")
    assert status == 404 and h["x-error-code"] == "EntryNotFound" and h["x-repo-commit"] == oid
    status, h, _ = request(server, "GET", "/alice/r/resolve/nobranch/dir/a.txt")
    assert status == 404 and h["x-error-code"] == "RevisionNotFound"

    status, _, body = request(server, "GET", "/api/models/alice/r/tree/main?recursive=true")
    entries = {e["path"]: e for e in json.loads(body)}
    assert entries["dir"]["type"] == "directory" and entries["dir/a.txt"]["oid"] == git_blob_sha1(b"hello world")
    status, _, body = request(server, "GET", "/api/models/alice/r/tree/main")
    assert "dir/a.txt" not in {e["path"] for e in json.loads(body)}  # not recursive: top level only
    # a commit based on a stale parent is refused (412), the branch head stays
    status, _, _ = commit(server, "alice/r", [header("stale", parent="0" * 40), add("b.txt", b"x")])
    assert status == 412
    assert json.loads(request(server, "GET", "/api/models/alice/r")[2])["sha"] == oid


def test_lfs_batch_tickets_verify_and_commit(server):
    request(server, "POST", "/api/repos/create", {"name": "w"}, A)
    blob = bytes(range(256)) * 9
    sha = hashlib.sha256(blob).hexdigest()
    status, _, body = request(server, "POST", "/api/models/alice/w/preupload/main",
                              {"files": [{"path": "w.safetensors", "size": len(blob),
                                          "sample": base64.b64encode(blob[:512]).decode()},
                                         {"path": "c.json", "size": 2, "sample": base64.b64encode(b"{}").decode()}]}, A)
    modes = {f["path"]: f["uploadMode"] for f in json.loads(body)["files"]}
    assert modes == {"w.safetensors": "lfs", "c.json": "regular"}
    # committing an LFS pointer to an object that was never uploaded is refused
    lfs_line = {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": sha, "size": len(blob)}}
    assert commit(server, "alice/w", [header(), lfs_line])[0] == 400
    batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": sha, "size": len(blob)}]}
    assert request(server, "POST", "/bob/w.git/info/lfs/objects/batch", batch, A)[0] == 404  # no such repo
    assert request(server, "POST", "/alice/w.git/info/lfs/objects/batch", batch, B)[0] == 403  # not Bob's
    status, _, body = request(server, "POST", "/alice/w.git/info/lfs/objects/batch", batch, A)
    actions = json.loads(body)["objects"][0]["actions"]
    upload = actions["upload"]["href"].replace(server.url, "")
    assert request(server, "PUT", upload, blob[:-1])[0] == 400  # wrong content: refused, ticket used up
    status, _, body = request(server, "POST", "/alice/w.git/info/lfs/objects/batch", batch, A)
    upload = json.loads(body)["objects"][0]["actions"]["upload"]["href"].replace(server.url, "")
    assert request(server, "PUT", upload, blob)[0] == 200
    assert request(server, "PUT", upload, blob)[0] == 403  # one-time ticket
    verify = actions["verify"]["href"].replace(server.url, "")
    assert request(server, "POST", verify, {"oid": sha, "size": len(blob)}, A)[0] == 200
    status, _, body = request(server, "POST", "/alice/w.git/info/lfs/objects/batch", batch, A)
    assert "actions" not in json.loads(body)["objects"][0]  # already stored: nothing to upload
    assert commit(server, "alice/w", [header(), lfs_line])[0] == 200
    status, h, data = request(server, "GET", "/alice/w/resolve/main/w.safetensors")
    assert data == blob and h["x-linked-etag"] == f'"{sha}"' and int(h["x-linked-size"]) == len(blob)
    # preupload now reports the stored oid, so the client skips an unchanged file
    status, _, body = request(server, "POST", "/api/models/alice/w/preupload/main",
                              {"files": [{"path": "w.safetensors", "size": len(blob), "sample": ""}]}, A)
    assert json.loads(body)["files"][0]["oid"] == sha


def test_private_repos_auth_and_errors_are_4xx_on_a_kept_alive_connection(server):
    conn = http.client.HTTPConnection(server.url.split("//")[1], timeout=10)
    assert request(server, "POST", "/api/repos/create", {"name": "p", "visibility": "private"}, A, conn=conn)[0] == 200
    assert commit(server, "alice/p", [header(), add("a.txt", b"secret")])[0] == 200
    for token, expected in ((None, 401), (B, 404)):
        status, h, _ = request(server, "GET", "/alice/p/resolve/main/a.txt", token=token, conn=conn)
        assert (status, h["x-error-code"]) == (expected, "RepoNotFound")
    # a refused request with a body leaves the keep-alive connection usable for the next one
    big = {"files": [{"path": f"f{i}", "size": 1, "sample": ""} for i in range(200)]}
    assert request(server, "POST", "/api/models/alice/p/preupload/main", big, B, conn=conn)[0] == 404
    assert request(server, "GET", "/alice/p/resolve/main/a.txt", token=A, conn=conn)[2] == b"secret"
    assert request(server, "GET", "/api/whoami-v2", token="wrong", conn=conn)[0] == 401
    assert request(server, "POST", "/api/repos/create", {"name": "x", "organization": "alice"}, B, conn=conn)[0] == 403
    assert request(server, "POST", "/api/models/alice/p/commit/main", b"{not json", A, conn=conn)[0] == 400
    assert request(server, "GET", "/nothing/here", conn=conn)[0] == 404
    conn.close()
    assert all(status < 500 for _, _, status in server.requests), server.requests


def test_branches_and_old_commits(server):
    request(server, "POST", "/api/repos/create", {"name": "b"}, A)
    first = json.loads(commit(server, "alice/b", [header("one"), add("v.txt", b"1")])[2])["commitOid"]
    assert request(server, "POST", "/api/models/alice/b/branch/dev", {}, A)[0] == 200
    assert request(server, "POST", "/api/models/alice/b/branch/dev", {}, A)[0] == 409
    assert commit(server, "alice/b", [header("two"), add("v.txt", b"2")], branch="dev")[0] == 200
    assert request(server, "GET", "/alice/b/resolve/main/v.txt")[2] == b"1"
    assert request(server, "GET", "/alice/b/resolve/dev/v.txt")[2] == b"2"
    assert request(server, "GET", f"/alice/b/resolve/{first[:7]}/v.txt")[2] == b"1"  # short sha
    refs = json.loads(request(server, "GET", "/api/models/alice/b/refs")[2])
    assert {r["name"] for r in refs["branches"]} == {"main", "dev"}
    titles = [c["title"] for c in json.loads(request(server, "GET", "/api/models/alice/b/commits/dev")[2])]
    assert titles == ["two", "one", "initial commit"]
