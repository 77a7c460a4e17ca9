"""Issue 5's acceptance on the shared lab, with the real kubectl: who gets in, and what they may do.

- A user kubeconfig from `kubelab kubeconfig --user` bound to ClusterRole `view` in one
  namespace can read there but not delete (403 with upstream's wording), and `kubectl auth
  can-i [--list]` and `kubectl auth whoami` tell the truth about it.
- Requests without credentials, with a certificate from another CA, or with a tampered,
  wrong-audience or orphaned ServiceAccount token are refused, by the API server (401) and by
  every node's kubelet (:10250), which serves the API server's client certificate only.
- The DNS add-on's pods run as ServiceAccount kube-system/coredns with the projected
  kube-api-access volume, and a token of that account may do what the add-on's manifest grants
  (list/watch Services, EndpointSlices, Namespaces) and nothing else (no Secrets, no Pods, no
  writes).
- A pod's token is mounted at /var/run/secrets/kubernetes.io/serviceaccount and authenticates
  the pod, from inside it, as its ServiceAccount.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.conftest import KUBECTL, Lab

NS = "security"
USER = "jane"
NODE_IPS = ("127.100.0.1", "127.100.0.2", "127.100.0.3")
KUBELET_PORT = 10250
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def secured(lab: Lab) -> Iterator[Lab]:
    """The shared lab with namespace ``security`` holding a ConfigMap, and user ``jane``
    bound to ClusterRole ``view`` there."""
    with lab.namespace(NS):
        lab.kubectl("create", "configmap", "settings", "-n", NS, "--from-literal=mode=strict")
        lab.kubectl("create", "rolebinding", "jane-view", "-n", NS, "--clusterrole=view", f"--user={USER}")
        yield lab


@pytest.fixture(scope="module")
def jane(secured: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Jane's kubeconfig (group ``developers``), made with `kubelab kubeconfig --user`."""
    path = tmp_path_factory.mktemp("users") / "jane.kubeconfig"
    made = secured.kubelab("kubeconfig", "--user", USER, "--group", "developers", "-o", str(path))
    assert made.returncode == 0, made.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    return path


def kubectl_with(
    lab: Lab, *args: str, kubeconfig: Path | None = None, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """kubectl with ``kubeconfig``, or with nothing but the lab's address, CA and ``token``
    (no client certificate, so the token is the only credential)."""
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    if kubeconfig is not None:
        credentials = ["--kubeconfig", str(kubeconfig)]
    else:
        credentials = [
            "--kubeconfig",
            os.devnull,
            f"--server={lab.server_url}",
            f"--certificate-authority={lab.data_dir / 'pki' / 'ca.crt'}",
            f"--token={token}",
        ]
    return subprocess.run(
        [str(KUBECTL), *credentials, "--cache-dir", str(lab.kubectl_cache_dir / "security"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def forbidden(*, user: str, verb: str, resource: str, namespace: str, group: str = "", name: str = "") -> str:
    """kubectl's line for a 403, with the API server's (upstream's) message."""
    what = f'{resource} "{name}"' if name else resource
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return (
        f"Error from server (Forbidden): {what} is forbidden: User {json.dumps(user)} cannot {verb} "
        f'resource "{resource}" in API group "{group}"{where}'
    )


# --- a user bound to `view` -----------------------------------------------------------------


def test_a_view_user_can_read_but_not_delete(secured: Lab, jane: Path) -> None:
    got = kubectl_with(secured, "get", "configmap", "settings", "-n", NS, "-o", "json", kubeconfig=jane)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["data"] == {"mode": "strict"}
    listed = kubectl_with(secured, "get", "configmaps", "-n", NS, "-o", "name", kubeconfig=jane)
    assert "configmap/settings" in listed.stdout.split()

    deleted = kubectl_with(secured, "delete", "configmap", "settings", "-n", NS, kubeconfig=jane)
    assert deleted.returncode == 1
    assert deleted.stderr.strip() == forbidden(
        user=USER, verb="delete", resource="configmaps", namespace=NS, name="settings"
    )
    assert secured.kubectl("get", "configmap", "settings", "-n", NS, "-o", "name").stdout.strip()

    # `view` does not reach Secrets, other namespaces, or cluster-scoped objects.
    secrets = kubectl_with(secured, "get", "secrets", "-n", NS, kubeconfig=jane)
    assert secrets.stderr.strip() == forbidden(user=USER, verb="list", resource="secrets", namespace=NS)
    elsewhere = kubectl_with(secured, "get", "configmaps", "-n", "default", kubeconfig=jane)
    assert elsewhere.stderr.strip() == forbidden(
        user=USER, verb="list", resource="configmaps", namespace="default"
    )
    nodes = kubectl_with(secured, "get", "nodes", kubeconfig=jane)
    assert nodes.stderr.strip() == forbidden(user=USER, verb="list", resource="nodes", namespace="")


def test_auth_can_i_answers_for_the_user(secured: Lab, jane: Path) -> None:
    yes = kubectl_with(secured, "auth", "can-i", "get", "configmaps", "-n", NS, kubeconfig=jane)
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes")
    no = kubectl_with(secured, "auth", "can-i", "delete", "configmaps", "-n", NS, kubeconfig=jane)
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    # An admin asks on someone's behalf (SubjectAccessReview through impersonation).
    as_jane = secured.kubectl(
        "auth", "can-i", "list", "pods", "-n", NS, f"--as={USER}", "--as-group=developers", check=False
    )
    assert (as_jane.returncode, as_jane.stdout.strip()) == (0, "yes")

    listed = kubectl_with(secured, "auth", "can-i", "--list", "-n", NS, kubeconfig=jane)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert "[get list watch]" in rows["configmaps"]
    assert "[get list watch]" in rows["pods"]
    assert "secrets" not in rows
    assert "selfsubjectreviews.authentication.k8s.io" in rows  # what every authenticated user may do


def test_auth_whoami_names_the_user_and_groups(secured: Lab, jane: Path) -> None:
    whoami = kubectl_with(secured, "auth", "whoami", "-o", "json", kubeconfig=jane)
    assert whoami.returncode == 0, whoami.stderr
    review = json.loads(whoami.stdout)
    assert review["kind"] == "SelfSubjectReview"
    assert review["status"]["userInfo"]["username"] == USER
    assert review["status"]["userInfo"]["groups"] == ["developers", "system:authenticated"]
    admin = secured.kubectl("auth", "whoami").stdout
    assert "kubernetes-admin" in admin and "system:masters" in admin


# --- refused at the door -------------------------------------------------------------------


def request(
    url: str, *, context: ssl.SSLContext, path: str, token: str | None = None, timeout: float = 10
) -> tuple[int, dict | str]:
    """One HTTPS GET; (status, parsed body). A refused TLS handshake raises ssl.SSLError or
    ConnectionResetError."""
    host, _, port = url.removeprefix("https://").rpartition(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
    finally:
        connection.close()
    try:
        return response.status, json.loads(body)
    except json.JSONDecodeError:
        return response.status, body


def refused(url: str, *, context: ssl.SSLContext, path: str, token: str | None = None) -> str:
    """How the server refused the request: "handshake" or the HTTP status; a 2xx fails the test."""
    try:
        status, body = request(url, context=context, path=path, token=token)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return "handshake"
    assert status in (401, 403), f"GET {url}{path} was not refused: {status} {body}"
    return str(status)


def foreign_certificate(directory: Path) -> tuple[Path, Path]:
    """A client certificate claiming system:masters, signed by a CA the lab never heard of."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor-ca")])
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-admin"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "impostor.crt", directory / "impostor.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def lab_context(lab: Lab, *, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(lab.data_dir / "pki" / "ca.crt"))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def tamper(token: str, **claims: object) -> str:
    """The token with its payload's ``claims`` replaced and the original signature kept."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def unsigned(token: str) -> str:
    """The token re-headed as ``alg: none`` with no signature."""
    _, payload, _ = token.split(".")
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{header}.{payload}."


def create_token(lab: Lab, account: str, namespace: str, *extra: str) -> str:
    return lab.kubectl("create", "token", account, "-n", namespace, *extra).stdout.strip()


def test_the_api_server_refuses_anonymous_and_forged_credentials(secured: Lab, tmp_path: Path) -> None:
    nobody = lab_context(secured)
    status, body = request(secured.server_url, context=nobody, path="/api/v1/namespaces")
    assert status == 401
    assert isinstance(body, dict) and (body["kind"], body["reason"], body["code"]) == (
        "Status",
        "Unauthorized",
        401,
    )
    # Health and version stay open to everyone, as upstream's system:public-info-viewer.
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert request(secured.server_url, context=nobody, path=path)[0] == 200, path

    impostor = lab_context(secured, cert=foreign_certificate(tmp_path))
    assert refused(secured.server_url, context=impostor, path="/api/v1/namespaces") in ("handshake", "401")

    token = create_token(secured, "default", NS)
    assert request(secured.server_url, context=nobody, path=f"/api/v1/namespaces/{NS}", token=token)[0] == 403
    for forged in (
        tamper(token, sub="system:serviceaccount:kube-system:coredns"),
        tamper(token, exp=int(time.time()) + 10 * 365 * 86400),
        unsigned(token),
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "not-a-jwt",
    ):
        status, body = request(secured.server_url, context=nobody, path="/api/v1/namespaces", token=forged)
        assert status == 401, (forged, body)
    other_audience = create_token(secured, "default", NS, "--audience=https://elsewhere.example")
    assert request(secured.server_url, context=nobody, path="/api/v1", token=other_audience)[0] == 401


def test_a_deleted_service_accounts_token_stops_working(secured: Lab) -> None:
    secured.kubectl("create", "serviceaccount", "short-lived", "-n", NS)
    token = create_token(secured, "short-lived", NS)
    whoami = kubectl_with(secured, "auth", "whoami", "-o", "json", token=token)
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{NS}:short-lived"
    )
    secured.kubectl("delete", "serviceaccount", "short-lived", "-n", NS)
    after = kubectl_with(secured, "auth", "whoami", token=token)
    assert after.returncode == 1
    assert "Unauthorized" in after.stderr


def node_ips(lab: Lab) -> list[str]:
    return sorted(
        lab.kubectl(
            "get", "nodes", "-o", "jsonpath={.items[*].status.addresses[?(@.type=='InternalIP')].address}"
        ).stdout.split()
    )


def test_kubelets_refuse_everyone_but_the_api_server(secured: Lab, jane: Path, tmp_path: Path) -> None:
    ips = node_ips(secured)
    assert ips == sorted(NODE_IPS)
    impostor = foreign_certificate(tmp_path)
    jane_files = tmp_path / "jane.crt", tmp_path / "jane.key"
    kubeconfig_user = yaml.safe_load(jane.read_text())["users"][0]["user"]
    jane_files[0].write_bytes(base64.b64decode(kubeconfig_user["client-certificate-data"]))
    jane_files[1].write_bytes(base64.b64decode(kubeconfig_user["client-key-data"]))
    token = create_token(secured, "default", NS)
    for ip in ips:
        url = f"https://{ip}:{KUBELET_PORT}"
        for path in ("/pods", "/containerLogs/kube-system/x/y", "/metrics"):
            assert refused(url, context=lab_context(secured), path=path)
            assert refused(url, context=lab_context(secured, cert=impostor), path=path)
            # A certificate the lab CA signed, but not the API server's: refused too.
            assert refused(url, context=lab_context(secured, cert=jane_files), path=path)
            assert refused(url, context=lab_context(secured), path=path, token=token)
    # The API server itself gets through: logs of a DNS pod, fetched through it from its kubelet.
    pod = secured.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "name").stdout
    logs = secured.kubectl("logs", "-n", "kube-system", pod.split()[0], "--tail=1", check=False)
    assert logs.returncode == 0, logs.stderr


# --- the DNS add-on's ServiceAccount -------------------------------------------------------


def test_the_dns_addon_runs_as_its_own_service_account_with_a_projected_token(secured: Lab) -> None:
    pods = json.loads(
        secured.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json").stdout
    )["items"]
    assert pods, "the DNS add-on has no pods"
    for pod in pods:
        spec = pod["spec"]
        assert spec["serviceAccountName"] == "coredns"
        projected = [volume for volume in spec["volumes"] if volume["name"].startswith("kube-api-access-")]
        assert len(projected) == 1, spec["volumes"]
        sources = projected[0]["projected"]["sources"]
        assert any("serviceAccountToken" in source for source in sources)
        mounts = spec["containers"][0]["volumeMounts"]
        assert {"name": projected[0]["name"], "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": True} in mounts
        assert all(condition["status"] == "True" for condition in pod["status"]["conditions"]), pod["status"]


def test_the_dns_addon_may_do_what_its_manifest_grants_and_nothing_more(secured: Lab) -> None:
    token = create_token(secured, "coredns", "kube-system")
    account = "system:serviceaccount:kube-system:coredns"
    for allowed in (
        ("get", "services", "-A"),
        ("get", "endpointslices.discovery.k8s.io", "-A"),
        ("get", "namespaces"),
    ):
        result = kubectl_with(secured, *allowed, token=token)
        assert result.returncode == 0, (allowed, result.stderr)
    for args, verb, resource, namespace, group in (
        (("get", "secrets", "-n", "kube-system"), "list", "secrets", "kube-system", ""),
        (("get", "pods", "-n", "kube-system"), "list", "pods", "kube-system", ""),
        (("get", "configmaps", "-n", "kube-system"), "list", "configmaps", "kube-system", ""),
        (("delete", "service", "kube-dns", "-n", "kube-system"), "delete", "services", "kube-system", ""),
    ):
        result = kubectl_with(secured, *args, token=token)
        assert result.returncode == 1, (args, result.stdout)
        name = "kube-dns" if verb == "delete" else ""
        assert result.stderr.strip() == forbidden(
            user=account, verb=verb, resource=resource, namespace=namespace, group=group, name=name
        )
    can_i = kubectl_with(secured, "auth", "can-i", "get", "secrets", "-n", "kube-system", token=token)
    assert can_i.stdout.strip() == "no"


# --- a pod's own token ---------------------------------------------------------------------

TOKEN_READER = """\
import json, os, ssl, urllib.request
directory = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(os.path.join(directory, "token")).read().strip()
namespace = open(os.path.join(directory, "namespace")).read().strip()
context = ssl.create_default_context(cafile=os.path.join(directory, "ca.crt"))
server = "https://%s:%s" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
request = urllib.request.Request(
    server + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    data=json.dumps(review).encode(),
    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    method="POST",
)
answer = json.load(urllib.request.urlopen(request, context=context, timeout=10))
print(json.dumps({"namespace": namespace, "user": answer["status"]["userInfo"]}))
"""


def test_a_pods_token_is_mounted_and_authenticates_it_from_inside(secured: Lab) -> None:
    secured.kubectl("create", "serviceaccount", "reader", "-n", NS)
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "token-reader", "namespace": NS},
        "spec": {
            "serviceAccountName": "reader",
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": "python:3.11", "command": ["python3", "-c", TOKEN_READER]}
            ],
        },
    }
    secured.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    secured.kubectl(
        "wait",
        "-n",
        NS,
        "pod/token-reader",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=90s",
        timeout=120,
    )
    printed = json.loads(secured.kubectl("logs", "-n", NS, "token-reader").stdout.strip().splitlines()[-1])
    assert printed["namespace"] == NS
    assert printed["user"]["username"] == f"system:serviceaccount:{NS}:reader"
    assert set(printed["user"]["groups"]) == {
        "system:serviceaccounts",
        f"system:serviceaccounts:{NS}",
        "system:authenticated",
    }
    # The token is bound to the pod: the API server says which one.
    assert printed["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["token-reader"]


# --- a user made through a CertificateSigningRequest ---------------------------------------------


def test_a_certificate_signing_request_makes_a_user_as_the_docs_tutorial_does(
    secured: Lab, tmp_path: Path
) -> None:
    """kubernetes.io's "issue a certificate for a user": create the CSR, approve it with kubectl,
    read the certificate the controller manager signed, and log in with it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "myuser"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dev"),
        ]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    manifest = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "myuser"},
        "spec": {
            "request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "expirationSeconds": 86400,
            "usages": ["client auth"],
        },
    }
    secured.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        pending = secured.kubectl("get", "csr", "myuser", "--no-headers").stdout.split()
        assert pending[2:] == ["kubernetes.io/kube-apiserver-client", "kubernetes-admin", "24h", "Pending"]
        approved = secured.kubectl("certificate", "approve", "myuser")
        assert approved.stdout == "certificatesigningrequest.certificates.k8s.io/myuser approved\n"
        deadline = time.monotonic() + 30
        encoded = ""
        while not encoded:
            assert time.monotonic() < deadline, "the controller manager did not sign the approved CSR in 30 s"
            encoded = secured.kubectl("get", "csr", "myuser", "-o", "jsonpath={.status.certificate}").stdout
            if not encoded:
                time.sleep(0.2)
        certificate = x509.load_pem_x509_certificate(base64.b64decode(encoded))
        assert certificate.subject == subject
        assert (
            timedelta(hours=23) < certificate.not_valid_after_utc - datetime.now(UTC) <= timedelta(hours=24)
        )
        (tmp_path / "myuser.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (tmp_path / "myuser.crt").write_bytes(base64.b64decode(encoded))
        kubeconfig = tmp_path / "myuser.kubeconfig"
        for args in (
            (
                "config",
                "set-cluster",
                "lab",
                f"--server={secured.server_url}",
                f"--certificate-authority={secured.data_dir / 'pki' / 'ca.crt'}",
            ),
            (
                "config",
                "set-credentials",
                "myuser",
                f"--client-key={tmp_path / 'myuser.key'}",
                f"--client-certificate={tmp_path / 'myuser.crt'}",
                "--embed-certs=true",
            ),
            ("config", "set-context", "myuser", "--cluster=lab", "--user=myuser"),
            ("config", "use-context", "myuser"),
        ):
            made = kubectl_with(secured, *args, kubeconfig=kubeconfig)
            assert made.returncode == 0, made.stderr
        whoami = kubectl_with(secured, "auth", "whoami", "-o", "json", kubeconfig=kubeconfig)
        assert whoami.returncode == 0, whoami.stderr
        assert json.loads(whoami.stdout)["status"]["userInfo"] == {
            "username": "myuser",
            "groups": ["dev", "system:authenticated"],
        }
        assert kubectl_with(secured, "auth", "can-i", "list", "pods", kubeconfig=kubeconfig).stdout == "no\n"
    finally:
        secured.kubectl("delete", "csr", "myuser", "--ignore-not-found")
