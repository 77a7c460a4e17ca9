"""kubelab's client library: client-go for Python and asyncio.

Everything that talks to an API server — the controllers, the kubelet, the service proxy and
every add-on — goes through this package, and it speaks only the public Kubernetes API, so the
add-ons run unchanged against a real cluster. It imports nothing else from ``control`` (an
import-linter contract enforces it).

One concept per module, as in client-go:

- ``config`` — kubeconfig and in-cluster configuration (``load_config``); ``auth`` — per-request
  credentials (token files, exec plugins); ``tokensource`` — tokens asked for before each request
  and renewed; ``tokenrequest`` — ServiceAccount tokens from the TokenRequest API, as a source;
- ``rest`` — the async REST client, ``Resource`` addressing, watch streams; ``discovery`` —
  API discovery and kind → resource resolution; ``pager`` — chunked lists; ``errors`` — the
  ``Status`` error hierarchy;
- ``reflector`` — list, then watch, into a store; ``indexer`` — the indexed cache; ``informer``
  — shared informers and their factory;
- ``workqueue`` and ``ratelimit`` — controller work queues and retry backoff; ``controller`` —
  the worker loop; ``clock`` — injectable time; ``testing`` — fakes for tests.

The names most programs need are re-exported here.
"""

from control.client.config import ClientConfig, ConfigError, in_cluster_config, load_config, load_kubeconfig
from control.client.controller import Controller, PermanentError, TemporaryError
from control.client.discovery import Discovery
from control.client.errors import (
    AlreadyExistsError,
    APIError,
    ConflictError,
    ExpiredError,
    GoneError,
    InvalidError,
    NotFoundError,
    RequestError,
    TransportError,
)
from control.client.indexer import Indexer, object_key, split_key
from control.client.informer import (
    DeletedFinalStateUnknown,
    InformerFactory,
    SharedInformer,
    deletion_handling_key,
)
from control.client.rest import EventType, PatchType, Resource, RESTClient, WatchEvent
from control.client.tokenrequest import TokenRequestError, service_account_token_source
from control.client.tokensource import CachedTokenSource, Token, TokenSource
from control.client.workqueue import QueueShutDown, RateLimitingQueue

__all__ = [
    "APIError",
    "AlreadyExistsError",
    "CachedTokenSource",
    "ClientConfig",
    "ConfigError",
    "ConflictError",
    "Controller",
    "DeletedFinalStateUnknown",
    "Discovery",
    "EventType",
    "ExpiredError",
    "GoneError",
    "Indexer",
    "InformerFactory",
    "InvalidError",
    "NotFoundError",
    "PatchType",
    "PermanentError",
    "QueueShutDown",
    "RESTClient",
    "RateLimitingQueue",
    "RequestError",
    "Resource",
    "SharedInformer",
    "TemporaryError",
    "Token",
    "TokenRequestError",
    "TokenSource",
    "TransportError",
    "WatchEvent",
    "deletion_handling_key",
    "in_cluster_config",
    "load_config",
    "load_kubeconfig",
    "object_key",
    "service_account_token_source",
    "split_key",
]
