"""A real kopf operator, unchanged, against kubelab's API server.

kopf (nolar/kopf) is the Python operator framework people actually run; it reads discovery for
``preferredVersion`` and the ``status`` subresource, lists (or streams initial events) and
watches with resource versions, writes only merge patches and JSON patches guarded by a ``test``
of the resourceVersion (status through ``/status``), keeps its own state in annotations and
``status``, adds a finalizer when there are deletion handlers, posts Events, registers its own
admission webhooks and, unless standalone, takes part in peering through a ``ClusterKopfPeering``
object. Each test runs ``kopf.operator`` in a thread of its own against the in-process API server,
logged in with the admin kubeconfig the fixture wrote, and checks the outcome through the API.
kopf logs the API errors it retries or ignores as warnings, so every test also fails on any kopf
warning or error it does not expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import kopf
import pytest

from tests.control.apiserver.conftest import RunningServer, free_port, webhook_tls

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
GROUP = "lab.example.com"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"
EVENTS = "/api/v1/namespaces/default/events"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PEERINGS = "/apis/kopf.dev/v1/clusterkopfpeerings"
LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
MERGE = "application/merge-patch+json"
SIGNALS_IGNORED = "OS signals are ignored: running not in the main thread."

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer"}, "colour": {"type": "string"}},
                            },
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}

# kopf's own peering CRD (kopf: peering.yaml), cluster-scoped flavour.
PEERING_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "clusterkopfpeerings.kopf.dev"},
    "spec": {
        "group": "kopf.dev",
        "scope": "Cluster",
        "names": {
            "plural": "clusterkopfpeerings",
            "singular": "clusterkopfpeering",
            "kind": "ClusterKopfPeering",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


async def until(predicate: Callable[[], Any | Awaitable[Any]], *, within: float = 15.0) -> Any:
    """Poll ``predicate`` (plain or async) until it returns something truthy, failing after
    ``within`` seconds; kopf's handlers run in the operator's thread, so their records are polled too."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def install_crd(apiserver: RunningServer, crd: dict[str, Any]) -> None:
    status, body = await apiserver.request("POST", CRDS, body=crd)
    assert status == 201, body

    async def established() -> bool:
        _, current = await apiserver.request("GET", f"{CRDS}/{crd['metadata']['name']}")
        conditions = (current.get("status") or {}).get("conditions", [])
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    await until(established)


async def get(apiserver: RunningServer, path: str) -> dict[str, Any] | None:
    status, body = await apiserver.request("GET", path)
    return body if status == 200 else None


@pytest.fixture
def kopf_problems(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The kopf log records at WARNING or above, as text; kopf reports failed API calls there.
    Only kopf's notice that an operator outside the main thread leaves OS signals alone is expected."""
    caplog.set_level(logging.DEBUG, logger="kopf")

    def problems() -> list[str]:
        return [
            f"{record.name} {record.levelname}: {record.getMessage()}"
            for record in caplog.records
            if record.name.startswith("kopf")
            and record.levelno >= logging.WARNING
            and record.getMessage() != SIGNALS_IGNORED
        ]

    return problems


@pytest.fixture
def kubeconfig(apiserver: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's ``login_with_kubeconfig`` reads ``KUBECONFIG``: point it at the fixture's admin file."""
    monkeypatch.setenv("KUBECONFIG", str(apiserver.data_dir / "kubeconfig"))


def new_registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    return registry


@contextlib.asynccontextmanager
async def running_operator(
    registry: kopf.OperatorRegistry,
    *,
    standalone: bool = True,
    watch_timeout: int | None = None,
    initial_streaming: bool = False,
    namespaces: list[str] | None = None,
    webhooks: kopf.WebhookServer | None = None,
) -> AsyncIterator[None]:
    """Run ``kopf.operator`` for the block (cluster-wide unless ``namespaces`` are given), then
    stop it by its stop flag.

    The operator gets a thread and an event loop of its own, as kopf's docs advise for embedding:
    when it stops, kopf cancels every task created in its loop after it started, which in the
    test's loop would include the API server's. ``watch_timeout`` is the ``timeoutSeconds`` kopf
    asks its watches to end after; ``initial_streaming`` has kopf start its watches with
    ``sendInitialEvents`` instead of a list; ``namespaces`` are kopf's namespace patterns;
    ``webhooks`` serves kopf's admission handlers and has kopf register them."""
    settings = kopf.OperatorSettings()
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = watch_timeout
    settings.watching.initial_streaming = initial_streaming
    if webhooks is not None:
        settings.admission.server = webhooks
        settings.admission.managed = "auto.kopf.dev"
    stop = threading.Event()
    ready = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=registry,
                    settings=settings,
                    standalone=standalone,
                    clusterwide=not namespaces,
                    namespaces=namespaces or (),
                    stop_flag=stop,
                    ready_flag=ready,
                )
            )
        except BaseException as exc:  # handed to the test's thread below
            failures.append(exc)

    thread = threading.Thread(target=run, name="kopf-operator")
    thread.start()
    try:
        assert await asyncio.to_thread(ready.wait, 15), "kopf did not start in 15 s"
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 15)
    assert not thread.is_alive(), "kopf did not stop in 15 s"
    assert failures == []


async def test_a_custom_resource_goes_through_create_update_and_delete_handlers(
    apiserver: RunningServer, kubeconfig: None, kopf_problems: Callable[[], list[str]]
):
    await install_crd(apiserver, WIDGET_CRD)
    registry = new_registry()
    calls: dict[str, list[Any]] = {"create": [], "update": [], "delete": [], "event": []}
    daemon_started = threading.Event()

    @kopf.on.create(GROUP, "v1", "widgets", id="summary", registry=registry)
    def summarise(spec: kopf.Spec, body: kopf.Body, **_: Any) -> dict[str, Any]:
        calls["create"].append(body["metadata"]["name"])
        kopf.info(body, reason="Summarised", message=f"size {spec['size']}")
        return {"size": spec["size"]}

    @kopf.on.create(GROUP, "v1", "widgets", id="label", registry=registry)
    def label(patch: kopf.Patch, **_: Any) -> None:
        patch.metadata.labels["handled-by"] = "kopf"
        patch.status["phase"] = "Ready"

    # kopf's diff base is the body it received, so the label added on creation is itself a change
    # to metadata (kopf's own design, the same against kube-apiserver): the update handler watches
    # the spec, as operators' usually do.
    @kopf.on.update(GROUP, "v1", "widgets", field="spec", registry=registry)
    def updated(diff: kopf.Diff, **_: Any) -> None:
        calls["update"].append([(op, path, old, new) for op, path, old, new in diff])

    @kopf.on.delete(GROUP, "v1", "widgets", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        calls["delete"].append(name)

    @kopf.on.event(GROUP, "v1", "widgets", registry=registry)
    def observed(event: kopf.RawEvent, **_: Any) -> None:
        calls["event"].append(event["type"])

    @kopf.daemon(GROUP, "v1", "widgets", registry=registry)
    async def watchful(stopped: kopf.DaemonStopped, **_: Any) -> None:
        daemon_started.set()
        await stopped.wait()

    async with running_operator(registry):
        status, body = await apiserver.request("POST", WIDGETS, body=widget("one", size=3, colour="red"))
        assert status == 201, body

        async def handled() -> dict[str, Any] | None:
            current = await get(apiserver, f"{WIDGETS}/one")
            annotations = current["metadata"].get("annotations", {}) if current else {}
            reported = current.get("status", {}) if current else {}
            return (
                current if LAST_HANDLED in annotations and {"summary", "phase"} <= reported.keys() else None
            )

        current = await until(handled)
        assert current["status"]["summary"] == {"size": 3}
        assert current["status"]["phase"] == "Ready"
        assert current["metadata"]["labels"] == {"handled-by": "kopf"}
        assert FINALIZER in current["metadata"]["finalizers"]
        assert calls["create"] == ["one"]
        await until(daemon_started.is_set)

        async def summarised_events() -> list[dict[str, Any]]:
            _, events = await apiserver.request("GET", EVENTS)
            return [e for e in events["items"] if e["reason"] == "Summarised"]

        [event] = await until(summarised_events)
        assert event["message"] == "size 3"
        assert event["type"] == "Normal"
        assert event["source"] == {"component": "kopf"}
        assert event["reportingComponent"] == "kopf"
        assert event["involvedObject"]["kind"] == "Widget"
        assert event["involvedObject"]["name"] == "one"
        assert event["involvedObject"]["uid"] == current["metadata"]["uid"]
        assert event["metadata"]["name"].startswith("kopf-event-")

        status, body = await apiserver.request(
            "PATCH", f"{WIDGETS}/one/status", body={"status": {"note": "external"}}, content_type=MERGE
        )
        assert status == 200, body
        status, body = await apiserver.request(
            "PATCH", f"{WIDGETS}/one", body={"spec": {"size": 5}}, content_type=MERGE
        )
        assert status == 200, body
        await until(lambda: calls["update"])
        assert calls["update"] == [[("change", ("size",), 3, 5)]]

        status, body = await apiserver.request("DELETE", f"{WIDGETS}/one")
        assert status == 200, body
        assert body["metadata"]["deletionTimestamp"]

        async def gone() -> bool:
            return await get(apiserver, f"{WIDGETS}/one") is None

        await until(gone)
        assert calls["delete"] == ["one"]
        assert calls["create"] == ["one"]
        await until(lambda: "DELETED" in calls["event"])  # the watch event follows

    assert kopf_problems() == []


async def finished_watches(apiserver: RunningServer, resource: str) -> int:
    """How many watch requests on ``resource`` the server has answered to the end (its metrics)."""
    async with apiserver.session.get(apiserver.url + "/metrics") as response:
        text = await response.text()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("apiserver_request_total{")
        and 'verb="WATCH"' in line
        and f'resource="{resource}"' in line
    )


@pytest.mark.parametrize("initial_streaming", [False, True], ids=["listed", "streamed"])
async def test_handled_objects_are_not_handled_again_after_a_restart_or_a_broken_watch(
    apiserver: RunningServer,
    kubeconfig: None,
    kopf_problems: Callable[[], list[str]],
    initial_streaming: bool,
):
    await install_crd(apiserver, WIDGET_CRD)
    registry = new_registry()
    created: list[str] = []
    updated: list[tuple[str, list[Any]]] = []
    resumed: list[str] = []
    deleted: list[str] = []

    @kopf.on.create(GROUP, "v1", "widgets", registry=registry)
    def on_create(name: str, **_: Any) -> None:
        created.append(name)

    @kopf.on.update(GROUP, "v1", "widgets", registry=registry)
    def on_update(name: str, diff: kopf.Diff, **_: Any) -> None:
        updated.append((name, [(op, path, old, new) for op, path, old, new in diff]))

    @kopf.on.resume(GROUP, "v1", "widgets", registry=registry)
    def on_resume(name: str, **_: Any) -> None:
        resumed.append(name)

    @kopf.on.delete(GROUP, "v1", "widgets", registry=registry)
    def on_delete(name: str, **_: Any) -> None:
        deleted.append(name)

    async def handled(name: str) -> bool:
        current = await get(apiserver, f"{WIDGETS}/{name}")
        return bool(current) and LAST_HANDLED in current["metadata"].get("annotations", {})

    async def gone(name: str) -> bool:
        return await get(apiserver, f"{WIDGETS}/{name}") is None

    async with running_operator(registry):
        for name in ("kept", "doomed"):
            await apiserver.request("POST", WIDGETS, body=widget(name, size=1))
            await until(lambda name=name: handled(name))
        # A change to status alone is no update for kopf; the spec change after it is.
        await apiserver.request(
            "PATCH", f"{WIDGETS}/kept/status", body={"status": {"seen": True}}, content_type=MERGE
        )
        await apiserver.request("PATCH", f"{WIDGETS}/kept", body={"spec": {"size": 2}}, content_type=MERGE)
        await until(lambda: updated)
    assert sorted(created) == ["doomed", "kept"]
    assert updated == [("kept", [("change", ("spec", "size"), 1, 2)])]

    # While no operator runs: one object changes, one is deleted (kopf's finalizer holds it), one appears.
    await apiserver.request("PATCH", f"{WIDGETS}/kept", body={"spec": {"size": 3}}, content_type=MERGE)
    status, body = await apiserver.request("DELETE", f"{WIDGETS}/doomed")
    assert status == 200 and body["metadata"]["deletionTimestamp"], body
    await apiserver.request("POST", WIDGETS, body=widget("late", size=1))

    # A fresh operator relists; its watches end every second and it resumes them from their last version.
    async with running_operator(registry, watch_timeout=1, initial_streaming=initial_streaming):
        await until(lambda: "kept" in resumed and len(updated) == 2 and "late" in created)
        await until(lambda: gone("doomed"))
        await until(lambda: handled("late"))
        watches = await finished_watches(apiserver, "widgets")

        async def watch_renewed() -> bool:
            return await finished_watches(apiserver, "widgets") > watches

        await until(watch_renewed)
        await apiserver.request("PATCH", f"{WIDGETS}/late", body={"spec": {"size": 4}}, content_type=MERGE)
        await until(lambda: len(updated) == 3)

    assert sorted(created) == ["doomed", "kept", "late"]
    assert updated[1:] == [
        ("kept", [("change", ("spec", "size"), 2, 3)]),
        ("late", [("change", ("spec", "size"), 1, 4)]),
    ]
    assert deleted == ["doomed"]
    assert resumed == ["kept"]  # resume handlers skip objects being deleted, as kopf documents
    assert kopf_problems() == []


@pytest.mark.parametrize("namespaces", [None, ["default"], ["def*"]], ids=["clusterwide", "named", "pattern"])
async def test_a_built_in_kind_is_handled(
    apiserver: RunningServer,
    kubeconfig: None,
    kopf_problems: Callable[[], list[str]],
    namespaces: list[str] | None,
):
    registry = new_registry()

    @kopf.on.create("configmaps", labels={"app": "kopf-test"}, registry=registry)
    def fill(patch: kopf.Patch, body: kopf.Body, **_: Any) -> None:
        patch.setdefault("data", {})["filled"] = "yes"
        kopf.warn(body, reason="Filled", message="data filled in")

    async with running_operator(registry, namespaces=namespaces):
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "labels": {"app": "kopf-test"}},
            "data": {"given": "1"},
        }
        status, body = await apiserver.request("POST", CONFIGMAPS, body=configmap)
        assert status == 201, body
        await apiserver.request("POST", CONFIGMAPS, body={**configmap, "metadata": {"name": "unlabelled"}})

        async def filled() -> dict[str, Any] | None:
            current = await get(apiserver, f"{CONFIGMAPS}/settings")
            annotations = current["metadata"].get("annotations", {}) if current else {}
            return current if LAST_HANDLED in annotations else None

        current = await until(filled)
        assert current["data"] == {"given": "1", "filled": "yes"}

        async def warnings() -> list[dict[str, Any]]:
            _, events = await apiserver.request("GET", EVENTS, params={"fieldSelector": "reason=Filled"})
            return events["items"]

        [event] = await until(warnings)
        assert event["type"] == "Warning"
        assert event["involvedObject"]["kind"] == "ConfigMap"
        assert event["involvedObject"]["name"] == "settings"
        unlabelled = await get(apiserver, f"{CONFIGMAPS}/unlabelled")
        assert unlabelled is not None and "annotations" not in unlabelled["metadata"]

    assert kopf_problems() == []


async def test_an_operator_in_peering_mode_registers_and_leaves(
    apiserver: RunningServer, kubeconfig: None, kopf_problems: Callable[[], list[str]]
):
    await install_crd(apiserver, PEERING_CRD)
    status, body = await apiserver.request(
        "POST",
        PEERINGS,
        body={"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "default"}},
    )
    assert status == 201, body
    await install_crd(apiserver, WIDGET_CRD)
    registry = new_registry()
    created: list[str] = []

    @kopf.on.create(GROUP, "v1", "widgets", registry=registry)
    def on_create(name: str, **_: Any) -> None:
        created.append(name)

    async def peers() -> dict[str, Any]:
        peering = await get(apiserver, f"{PEERINGS}/default")
        return (peering or {}).get("status") or {}

    async with running_operator(registry, standalone=False):
        [(identity, peer)] = (await until(peers)).items()
        assert peer["priority"] == 0 and peer["lifetime"] > 0
        await apiserver.request("POST", WIDGETS, body=widget("peered", size=1))
        await until(lambda: created)

    async def left() -> bool:
        return identity not in await peers()

    await until(left)
    assert created == ["peered"]
    assert kopf_problems() == []


async def test_admission_handlers_are_registered_and_called_back(
    apiserver: RunningServer, kubeconfig: None, kopf_problems: Callable[[], list[str]], tmp_path: Path
):
    await install_crd(apiserver, WIDGET_CRD)
    webhook_tls(tmp_path, name="kopf")  # a CA and a certificate for 127.0.0.1, as files
    webhooks = kopf.WebhookServer(
        addr="127.0.0.1",
        port=free_port(),
        host="127.0.0.1",
        certfile=tmp_path / "kopf.crt",
        pkeyfile=tmp_path / "kopf.key",
        cafile=tmp_path / "kopf-ca.crt",
    )
    registry = new_registry()

    @kopf.on.validate(GROUP, "v1", "widgets", id="size-limit", registry=registry)
    def limit(spec: kopf.Spec, **_: Any) -> None:
        if spec.get("size", 0) > 10:
            raise kopf.AdmissionError("a widget is at most 10 big", code=422)

    @kopf.on.mutate(GROUP, "v1", "widgets", id="default-colour", registry=registry)
    def colour(spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
        if "colour" not in spec:
            patch.spec["colour"] = "grey"

    async with running_operator(registry, webhooks=webhooks):

        async def registered() -> bool:
            paths = [
                "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/auto.kopf.dev",
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/auto.kopf.dev",
            ]
            configurations = [await get(apiserver, path) for path in paths]
            return all(c and c.get("webhooks") for c in configurations)

        await until(registered)
        status, created = await apiserver.request("POST", WIDGETS, body=widget("plain", size=1))
        assert status == 201, created
        assert created["spec"] == {"size": 1, "colour": "grey"}
        status, refused = await apiserver.request("POST", WIDGETS, body=widget("huge", size=11))
        assert status == 422, refused
        assert await get(apiserver, f"{WIDGETS}/huge") is None
        assert refused["message"] == (
            'admission webhook "size-limit.auto.kopf.dev" denied the request: a widget is at most 10 big'
        )

    # kopf logs each refusal its validating handlers make as an error of the handler: nothing else.
    assert kopf_problems() == [
        "kopf.objects ERROR: Webhook 'size-limit' failed permanently: a widget is at most 10 big"
    ]
