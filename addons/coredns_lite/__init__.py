"""coredns_lite: the cluster DNS add-on — the Kubernetes DNS specification, served like CoreDNS.

A CoreDNS replacement for the lab and for real clusters: it watches Services, EndpointSlices,
Namespaces (and Pods for ``pods verified``) and answers the ``cluster.local`` zone exactly as
CoreDNS's ``kubernetes`` plugin does, forwards everything else (``forward`` + ``cache``), and
serves CoreDNS's health, readiness and metrics endpoints. Laid out like a CoreDNS plugin:

- ``setup`` — the Corefile; ``__main__`` — flags; ``instance`` — one running server and reload;
- ``handler`` — one request; ``answers`` — the record rules; ``backend`` — what they read;
- ``table`` — prebuilt answers; ``wire`` — the bytes; ``server`` — UDP/TCP listeners;
- ``forward`` and ``cache`` — upstream resolution; ``metrics`` — CoreDNS's series;
- ``workers`` — several processes behind one address.

See README.md for the syntax, records, metrics and limits.
"""
