"""The Corefile: what parses into what, and every mistake failing with its keyword in the message."""

from __future__ import annotations

import pytest

from addons.coredns_lite.answers import PodMode
from addons.coredns_lite.forward import Policy, Upstream
from addons.coredns_lite.setup import Address, SetupError, load, parse_corefile, parse_duration

UPSTREAM_STYLE = """
# The Corefile the upstream kube-dns add-on ships, with a bind for the pod IP.
.:53 {
    errors
    bind {$POD_IP}
    health {$POD_IP}:8080 {
        lameduck 5s
    }
    ready {$POD_IP}:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus {$POD_IP}:9153
    forward . 127.0.0.53 "[::1]:5353" {
        max_concurrent 1000
        policy sequential
    }
    cache 30
    loop
    reload 2s
}
"""


def test_the_upstream_corefile_parses() -> None:
    config = parse_corefile(UPSTREAM_STYLE, environ={"POD_IP": "127.244.1.7"})
    assert config.port == 53 and config.bind == ("127.244.1.7",)
    assert config.health == Address("127.244.1.7", 8080) and config.lameduck == 5.0
    assert config.ready == Address("127.244.1.7", 8181)
    assert config.prometheus == Address("127.244.1.7", 9153)
    k8s = config.kubernetes
    assert k8s is not None
    assert k8s.zones == (("cluster", "local"), ("in-addr", "arpa"), ("ip6", "arpa"))
    assert k8s.pods is PodMode.INSECURE and k8s.ttl == 30
    assert k8s.fallthrough == (("in-addr", "arpa"), ("ip6", "arpa"))
    assert config.forward is not None
    assert config.forward.upstreams == (Upstream("127.0.0.53"), Upstream("::1", 5353))
    assert config.forward.max_concurrent == 1000 and config.forward.policy is Policy.SEQUENTIAL
    assert config.cache is not None and config.cache.success_ttl == 30 and config.cache.denial_ttl == 30
    assert config.loop and config.reload == 2.0
    assert config.plugins[:3] == ("errors", "bind", "health")


def test_defaults() -> None:
    config = parse_corefile(". {\n kubernetes\n}\n")
    assert config.port == 53 and config.bind == ("0.0.0.0",)
    assert config.kubernetes is not None and config.kubernetes.zones == (("cluster", "local"),)
    assert config.kubernetes.ttl == 5 and config.kubernetes.pods is PodMode.DISABLED
    assert config.kubernetes.fallthrough is None and config.kubernetes.startup_timeout == 5.0
    assert config.forward is None and config.cache is None and config.health is None and config.reload is None
    other = parse_corefile(".:1053 {\n health\n ready\n prometheus\n reload\n}")
    assert other.port == 1053
    assert other.health == Address("", 8080) and other.ready == Address("", 8181)
    assert other.prometheus == Address("127.0.0.1", 9153) and other.reload == 30.0


def test_all_kubernetes_options() -> None:
    config = parse_corefile(
        """.:53 {
            kubernetes example.org {
                pods verified
                endpoint_pod_names
                namespaces a b
                labels app=dns,tier!=x
                fallthrough
                ignore empty_service
                noendpoints
                kubeconfig /tmp/kc lab
                startup_timeout 100ms
            }
        }"""
    )
    k8s = config.kubernetes
    assert k8s is not None and k8s.zones == (("example", "org"),)
    assert k8s.pods is PodMode.VERIFIED and k8s.endpoint_pod_names
    assert k8s.namespaces == frozenset({"a", "b"}) and k8s.labels == "app=dns,tier!=x"
    assert k8s.fallthrough == () and k8s.ignore_empty_service and k8s.noendpoints
    assert (k8s.kubeconfig, k8s.context) == ("/tmp/kc", "lab") and k8s.startup_timeout == 0.1


def test_forward_to_resolv_conf_and_cache_block(tmp_path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\n")
    config = parse_corefile(
        f""".:53 {{
            forward . {resolv}
            cache {{
                success 100 60 2
                denial 50 10
            }}
        }}"""
    )
    assert config.forward is not None and config.forward.upstreams == (Upstream("127.0.0.53"),)
    cache = config.cache
    assert cache is not None
    assert (cache.success_capacity, cache.success_ttl, cache.success_min_ttl) == (100, 60, 2)
    assert (cache.denial_capacity, cache.denial_ttl) == (50, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (".:53", "expected '{'"),
        (".:53 {\n errors\n", "missing '}'"),
        (".:53 {\n}\n.:54 {\n}", "only one server block"),
        ("example.org:53 {\n}", "root zone"),
        (".:99999 {\n}", "port"),
        (".:53 {\n loadbalance\n}", "loadbalance: unknown or unsupported directive"),
        (".:53 {\n errors\n errors\n}", "errors: can be used only once"),
        (".:53 {\n kubernetes {\n podz insecure\n }\n}", "kubernetes: podz: unknown property"),
        (".:53 {\n kubernetes {\n pods maybe\n }\n}", "kubernetes: pods: expects one of"),
        (".:53 {\n kubernetes {\n ttl 3601\n }\n}", "kubernetes: ttl: ttl: 3601 is not in 0..3600"),
        (".:53 {\n kubernetes {\n ttl five\n }\n}", "kubernetes: ttl"),
        (".:53 {\n kubernetes {\n ignore everything\n }\n}", "kubernetes: ignore"),
        (
            ".:53 {\n kubernetes {\n startup_timeout soon\n }\n}",
            "kubernetes: startup_timeout: not a duration",
        ),
        (".:53 {\n kubernetes . {\n }\n}", "kubernetes: the root zone"),
        (".:53 {\n forward .\n}", "forward: expects FROM TO"),
        (".:53 {\n forward example.org 127.0.0.53\n}", "forward: only '.'"),
        (".:53 {\n forward . dns.example.org\n}", "forward: upstream 'dns.example.org': not an IP address"),
        (".:53 {\n forward . /nonexistent/resolv.conf\n}", "forward: cannot read /nonexistent/resolv.conf"),
        (".:53 {\n forward . 127.0.0.1 {\n max_concurrent 0\n }\n}", "forward: max_concurrent"),
        (".:53 {\n forward . 127.0.0.1 {\n policy fastest\n }\n}", "forward: policy"),
        (".:53 {\n forward . 127.0.0.1 {\n tls\n }\n}", "forward: tls: unknown property"),
        (".:53 {\n cache abc\n}", "cache: TTL: 'abc' is not a number"),
        (".:53 {\n cache {\n prefetch 10\n }\n}", "cache: prefetch: unknown property"),
        (".:53 {\n bind\n}", "bind: expects at least one address"),
        (
            ".:53 {\n bind {$POD_IP}\n}",
            "bind: expects at least one address (is the environment variable set?)",
        ),
        (".:53 {\n bind eth0\n}", "bind"),
        (".:53 {\n health :http\n}", "health"),
        (".:53 {\n health {\n lameduck\n }\n}", "health: lameduck: expected 'lameduck DURATION'"),
        (".:53 {\n ready nowhere:8181\n}", "ready: ready: 'nowhere' is not an IP address"),
        (".:53 {\n reload never\n}", "reload: not a duration"),
        (".:53 {\n loop {\n }\n}", "loop: takes no block"),
        ('.:53 {\n forward . "127.0.0.1\n}', "unterminated quote"),
    ],
)
def test_mistakes_fail_loudly_with_the_keyword(text: str, message: str) -> None:
    with pytest.raises(SetupError) as failure:
        parse_corefile(text, where="Corefile", environ={})
    assert message in str(failure.value)
    assert str(failure.value).startswith("Corefile")


def test_durations() -> None:
    assert parse_duration("5s") == 5.0 and parse_duration("100ms") == 0.1
    assert parse_duration("1m30s") == 90.0 and parse_duration("2h") == 7200.0
    for bad in ("", "5", "s", "5x", "1s2"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_load_reads_the_file(tmp_path) -> None:
    path = tmp_path / "Corefile"
    path.write_text(".:5353 {\n errors\n}\n")
    config, content = load(path)
    assert config.port == 5353 and content == path.read_bytes()
    with pytest.raises(SetupError, match="cannot read"):
        load(tmp_path / "missing")
    path.write_text(".:53 {\n bogus\n}\n")
    with pytest.raises(SetupError, match=f"{path}:2: bogus"):
        load(path)
