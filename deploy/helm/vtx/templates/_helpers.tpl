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

{{/* The services the chart deploys, in order. */}}
{{- define "vtx.services" -}}
gateway splitter transcriber health
{{- end -}}

{{/* The arq queue (a Redis sorted set) each worker consumes. */}}
{{- define "vtx.queueKey" -}}
{{- if eq . "splitter" -}}vtx:queue:split{{- else if eq . "transcriber" -}}vtx:queue:transcribe{{- else -}}{{ fail (printf "no queue for %s" .) }}{{- end -}}
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
{{- $tag = default $tag $svc.image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The default (CPU) vtx image, for jobs and tests. */}}
{{- define "vtx.defaultImage" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Redis connection parts: host, port, database, tls. */}}
{{- define "vtx.redis.host" -}}
{{- if .Values.redis.enabled -}}
{{- include "vtx.componentName" (dict "root" . "component" "redis") -}}
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

{{/* Database host and port. */}}
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

{{/* VTX_HEALTH_SERVICES: where the aggregator finds each service. */}}
{{- define "vtx.healthServices" -}}
{{- $root := . -}}
{{- $out := dict -}}
{{- range $name := list "gateway" "splitter" "transcriber" -}}
{{- $svc := index $root.Values $name -}}
{{- $_ := set $out $name (printf "http://%s:%v" (include "vtx.componentName" (dict "root" $root "component" $name)) $svc.service.port) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Settings every vtx container gets (the ConfigMap's data). */}}
{{- define "vtx.configData" -}}
VTX_HOST: "0.0.0.0"
VTX_GATEWAY_PORT: {{ .Values.gateway.port | quote }}
VTX_SPLITTER_PORT: {{ .Values.splitter.port | quote }}
VTX_TRANSCRIBER_PORT: {{ .Values.transcriber.port | quote }}
VTX_HEALTH_PORT: {{ .Values.health.port | quote }}
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
VTX_SHUTDOWN_GRACE_S: {{ .Values.config.shutdownGraceSeconds | quote }}
VTX_HEALTH_SERVICES: {{ include "vtx.healthServices" . | quote }}
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

{{/* The Secret's database URL and Redis URL as env references (for pods that do not use envFrom). */}}
{{- define "vtx.secretEnv" -}}
- name: VTX_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "vtx.secretName" . }}
      key: {{ .Values.secrets.keys.databaseUrl }}
- name: VTX_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "vtx.secretName" . }}
      key: {{ .Values.secrets.keys.redisUrl }}
{{- end -}}

{{/* The /tmp volume every pod mounts (root filesystem is read-only). */}}
{{- define "vtx.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{/* Migration hook timing: pre-install only when everything the Job needs exists before the release. */}}
{{- define "vtx.migrations.hook" -}}
{{- if and .Values.secrets.existingSecret (not .Values.postgresql.enabled) -}}
pre-install,pre-upgrade
{{- else -}}
post-install,pre-upgrade
{{- end -}}
{{- end -}}

{{/* Fail early on combinations that cannot work. */}}
{{- define "vtx.validate" -}}
{{- range $name := list "splitter" "transcriber" -}}
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
{{- end -}}
