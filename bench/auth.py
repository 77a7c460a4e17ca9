"""Benchmark: what authentication and authorization cost per request.

Starts the API server in its own process (on uvloop, as ``kubelab server`` runs it) with a
temporary data dir, ServiceAccount tokens configured and ``--authorization-mode=Node,RBAC``,
and measures, in the same run against the same server, requests/s of one ``GET`` of one
ConfigMap made

- with the admin client certificate (``system:masters``: the TLS layer already verified it,
  the user is cached per connection and the superuser short-circuits authorization), and
- with a ServiceAccount token (``kubectl create token``'s kind) whose account a Role and
  RoleBinding allow ``get configmaps``: every request hashes the token, finds its verified
  claims in the cache, checks the account still exists (in memory once the server has
  started ``ServiceAccountTokens``' store followers, else with a store read), and is
  authorized by the Node authorizer (no opinion) and then RBAC.

The two paths run in alternating rounds (first one, then the other first) with the same
concurrency, and the best round of each is compared, so a noisy neighbour hurts both alike. The overhead is
``1 - token rate / certificate rate``; target <= 10%.

    .venv/bin/python -m bench.auth [--seconds S] [--rounds N] [--clients N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import signal
import ssl
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from bench.apiserver import free_port
from control.apiserver.options import APIServerOptions
from control.lab import Layout, Settings, prepare, server_options

NAMESPACE = "default"
TARGET = f"/api/v1/namespaces/{NAMESPACE}/configmaps/target"


def _serve(options: APIServerOptions) -> None:
    """The child process: the API server until SIGTERM."""
    import uvloop

    from control.apiserver.server import serve

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve(options, stop=stop)

    uvloop.run(main())


class Server:
    """The API server in a child process, and an admin HTTPS session to it."""

    def __init__(self, data_dir: Path) -> None:
        self.layout = Layout.resolve(data_dir)
        self.settings = Settings(api_port=free_port())
        self.pki = prepare(self.layout, self.settings)
        self.url = self.settings.server_url
        files = self.pki.files
        self.options = dataclasses.replace(
            server_options(self.layout, self.settings),
            service_account_signing_key_file=files.service_account_key,
            service_account_key_files=(files.service_account_public_key,),
            authorization_modes=("Node", "RBAC"),
        )
        self.process = multiprocessing.get_context("spawn").Process(target=_serve, args=(self.options,))

    def ssl_context(self, *, admin: bool) -> ssl.SSLContext:
        files = self.pki.files
        context = ssl.create_default_context(cafile=str(files.ca_cert))
        if admin:
            context.load_cert_chain(str(files.admin_cert), str(files.admin_key))
        return context

    async def __aenter__(self) -> aiohttp.ClientSession:
        self.process.start()
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl_context(admin=True)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                async with self.session.get(self.url + "/readyz") as response:
                    if response.status == 200:
                        return self.session
            except aiohttp.ClientError:
                pass
            if not self.process.is_alive():
                break
            await asyncio.sleep(0.1)
        await self.__aexit__()
        raise RuntimeError("the API server did not become ready in 60 s")

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        if self.process.is_alive():
            self.process.terminate()
            await asyncio.to_thread(self.process.join, 20)
            if self.process.is_alive():
                self.process.kill()
                await asyncio.to_thread(self.process.join)


async def post(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
    async with session.post(
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    ) as response:
        answer = orjson.loads(await response.read())
        if response.status != 201:
            raise RuntimeError(f"POST {url} answered {response.status}: {answer.get('message')}")
        return answer


async def prepare_reader(session: aiohttp.ClientSession, url: str) -> str:
    """A ConfigMap, a ServiceAccount allowed to get it (Role + RoleBinding), and its token."""
    core = f"{url}/api/v1/namespaces/{NAMESPACE}"
    rbac = f"{url}/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}"
    await post(session, f"{core}/configmaps", {"metadata": {"name": "target"}, "data": {"key": "value"}})
    await post(session, f"{core}/serviceaccounts", {"metadata": {"name": "reader"}})
    await post(
        session,
        f"{rbac}/roles",
        {
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
    )
    await post(
        session,
        f"{rbac}/rolebindings",
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": NAMESPACE}],
        },
    )
    answer = await post(session, f"{core}/serviceaccounts/reader/token", {"spec": {}})
    return answer["status"]["token"]


async def rate(
    session: aiohttp.ClientSession, url: str, *, seconds: float, clients: int, headers: dict[str, str]
) -> float:
    """GETs/s of the target by ``clients`` concurrent loops for ``seconds``."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with session.get(url + TARGET, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET answered {response.status}")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="kubelab-bench-auth-") as tmp:
        server = Server(Path(tmp) / "lab")
        async with server as admin:
            token = await prepare_reader(admin, server.url)
            bearer = {"Authorization": f"Bearer {token}"}
            anonymous = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=server.ssl_context(admin=False))
            )
            try:
                # Warm both paths (connections, caches) before measuring.
                await rate(admin, server.url, seconds=0.5, clients=args.clients, headers={})
                await rate(anonymous, server.url, seconds=0.5, clients=args.clients, headers=bearer)
                certificate_rates: list[float] = []
                token_rates: list[float] = []
                paths = [(certificate_rates, admin, {}), (token_rates, anonymous, bearer)]
                for round_ in range(args.rounds):
                    for rates, session, headers in paths if round_ % 2 == 0 else reversed(paths):
                        rates.append(
                            await rate(
                                session,
                                server.url,
                                seconds=args.seconds,
                                clients=args.clients,
                                headers=headers,
                            )
                        )
            finally:
                await anonymous.close()
    certificate, token_rate = max(certificate_rates), max(token_rates)
    overhead = 1 - token_rate / certificate
    rows = [
        ("GET/s, admin certificate (system:masters)", f"{certificate:,.0f}", "", ""),
        (
            "GET/s, ServiceAccount token, Node+RBAC",
            f"{token_rate:,.0f}",
            f"overhead = {overhead:.1%}",
            "<= 10%",
        ),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"{args.clients} clients, best of {args.rounds} rounds of {args.seconds:g} s each")
    print(f"{'measure':<{width}}  {'value':>10}  {'ratio':<18} target")
    for name, value, ratio, target in rows:
        print(f"{name:<{width}}  {value:>10}  {ratio:<18} {target}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each round (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each path (default 5)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent requests (default 16)")
    args = parser.parse_args()
    import uvloop

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
