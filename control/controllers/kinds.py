"""The API resources the controllers read and write, named once.

Controllers speak the public API through control.client only, so these are client
``Resource`` values (group, version, plural, kind, scope), not registry entries.
"""

from __future__ import annotations

from control.client.rest import Resource

PODS = Resource(group="", version="v1", plural="pods", kind="Pod")
SERVICES = Resource(group="", version="v1", plural="services", kind="Service")
ENDPOINTS = Resource(group="", version="v1", plural="endpoints", kind="Endpoints")
NAMESPACES = Resource(group="", version="v1", plural="namespaces", kind="Namespace", namespaced=False)
NODES = Resource(group="", version="v1", plural="nodes", kind="Node", namespaced=False)
EVENTS = Resource(group="", version="v1", plural="events", kind="Event")
SERVICE_ACCOUNTS = Resource(group="", version="v1", plural="serviceaccounts", kind="ServiceAccount")
CONFIG_MAPS = Resource(group="", version="v1", plural="configmaps", kind="ConfigMap")
SECRETS = Resource(group="", version="v1", plural="secrets", kind="Secret")
RESOURCE_QUOTAS = Resource(group="", version="v1", plural="resourcequotas", kind="ResourceQuota")
REPLICATION_CONTROLLERS = Resource(
    group="", version="v1", plural="replicationcontrollers", kind="ReplicationController"
)
PERSISTENT_VOLUME_CLAIMS = Resource(
    group="", version="v1", plural="persistentvolumeclaims", kind="PersistentVolumeClaim"
)
DEPLOYMENTS = Resource(group="apps", version="v1", plural="deployments", kind="Deployment")
REPLICA_SETS = Resource(group="apps", version="v1", plural="replicasets", kind="ReplicaSet")
DAEMON_SETS = Resource(group="apps", version="v1", plural="daemonsets", kind="DaemonSet")
STATEFUL_SETS = Resource(group="apps", version="v1", plural="statefulsets", kind="StatefulSet")
CONTROLLER_REVISIONS = Resource(
    group="apps", version="v1", plural="controllerrevisions", kind="ControllerRevision"
)
JOBS = Resource(group="batch", version="v1", plural="jobs", kind="Job")
CRON_JOBS = Resource(group="batch", version="v1", plural="cronjobs", kind="CronJob")
ENDPOINT_SLICES = Resource(
    group="discovery.k8s.io", version="v1", plural="endpointslices", kind="EndpointSlice"
)
PERSISTENT_VOLUMES = Resource(
    group="", version="v1", plural="persistentvolumes", kind="PersistentVolume", namespaced=False
)
STORAGE_CLASSES = Resource(
    group="storage.k8s.io", version="v1", plural="storageclasses", kind="StorageClass", namespaced=False
)
LEASES = Resource(group="coordination.k8s.io", version="v1", plural="leases", kind="Lease")
CERTIFICATE_SIGNING_REQUESTS = Resource(
    group="certificates.k8s.io",
    version="v1",
    plural="certificatesigningrequests",
    kind="CertificateSigningRequest",
    namespaced=False,
)
