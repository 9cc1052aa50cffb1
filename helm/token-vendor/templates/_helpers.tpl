{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "token-vendor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name alone when it already holds the chart name. */}}
{{- define "token-vendor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "token-vendor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "token-vendor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "token-vendor.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "token-vendor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "token-vendor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "token-vendor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Client secrets: an existing Secret wins over one the chart creates. Empty: none mounted. */}}
{{- define "token-vendor.clientSecretsName" -}}
{{- if .Values.clientSecrets.existingSecret }}
{{- .Values.clientSecrets.existingSecret }}
{{- else if .Values.clientSecrets.create }}
{{- printf "%s-client-secrets" (include "token-vendor.fullname" .) }}
{{- end }}
{{- end }}

{{/* Caller digests: same rule, but off by default. Empty: no callers folder is mounted. */}}
{{- define "token-vendor.callerDigestsName" -}}
{{- if .Values.callerDigests.existingSecret }}
{{- .Values.callerDigests.existingSecret }}
{{- else if .Values.callerDigests.create }}
{{- printf "%s-caller-digests" (include "token-vendor.fullname" .) }}
{{- end }}
{{- end }}

{{/* Encryption keys: same rule. Empty: TOKEN_VENDOR_ENCRYPTION_KEYS is not set. */}}
{{- define "token-vendor.encryptionKeysName" -}}
{{- if .Values.encryptionKeys.existingSecret }}
{{- .Values.encryptionKeys.existingSecret }}
{{- else if .Values.encryptionKeys.create }}
{{- printf "%s-encryption-keys" (include "token-vendor.fullname" .) }}
{{- end }}
{{- end }}

{{/* How many Redis modes are set (0: in-memory store). */}}
{{- define "token-vendor.redisModes" -}}
{{- $r := .Values.redis }}
{{- len (compact (list (or $r.url $r.existingSecret) $r.sentinels $r.clusterNodes)) }}
{{- end }}

{{/* Fewest replicas that will run: what a PDB and the Redis check go by. */}}
{{- define "token-vendor.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/*
The configuration file. A client with neither secretFile nor secretEnv reads
the key named after its client id in the mounted client-secrets folder. A
caller's keySha256File in the caller-digests folder needs that Secret mounted.
*/}}
{{- define "token-vendor.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $dir := trimSuffix "/" .Values.clientSecrets.mountPath }}
{{- $clients := list }}
{{- range $c := $cfg.clients | default list }}
{{- if or (hasKey $c "secret") (hasKey $c "clientSecret") }}
{{- fail (printf "config.clients[%s]: a secret is never written inline; put it in clientSecrets.secrets or the existing Secret" $c.clientId) }}
{{- end }}
{{- if not (or $c.secretFile $c.secretEnv) }}
{{- if not (include "token-vendor.clientSecretsName" $) }}
{{- fail (printf "config.clients[%s] has no secretFile/secretEnv and no client-secrets Secret is mounted (set clientSecrets.existingSecret or clientSecrets.create)" $c.clientId) }}
{{- end }}
{{- $_ := set $c "secretFile" (printf "%s/%s" $dir $c.clientId) }}
{{- end }}
{{- $clients = append $clients $c }}
{{- end }}
{{- $_ := set $cfg "clients" $clients }}
{{- $callerDir := trimSuffix "/" .Values.callerDigests.mountPath }}
{{- range $c := $cfg.callers | default list }}
{{- if and $c.keySha256File (hasPrefix (printf "%s/" $callerDir) $c.keySha256File) (not (include "token-vendor.callerDigestsName" $)) }}
{{- fail (printf "config.callers[%s].keySha256File is in %s but no caller-digests Secret is mounted (set callerDigests.existingSecret or callerDigests.create)" $c.name $callerDir) }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Combinations the schema cannot express; fail early with a message naming the values. */}}
{{- define "token-vendor.validate" -}}
{{- $redisModes := include "token-vendor.redisModes" . | int }}
{{- if gt $redisModes 1 }}
{{- fail "redis: set only one of url/existingSecret, sentinels, clusterNodes" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.existingSecret }}
{{- fail "redis: set url or existingSecret, not both" }}
{{- end }}
{{- if and .Values.redis.sentinels (not .Values.redis.sentinelName) }}
{{- fail "redis.sentinelName is required with redis.sentinels" }}
{{- end }}
{{- if and (eq $redisModes 0) (gt (include "token-vendor.minReplicas" . | int) 1) }}
{{- fail "more than one replica needs Redis (redis.url, redis.existingSecret, redis.sentinels or redis.clusterNodes): the in-memory store is per pod" }}
{{- end }}
{{- if and (eq $redisModes 0) .Values.autoscaling.enabled }}
{{- fail "autoscaling needs Redis: the in-memory store is per pod" }}
{{- end }}
{{- if and (gt $redisModes 0) (not (include "token-vendor.encryptionKeysName" .)) }}
{{- fail "Redis is used, so encryption keys are required: set encryptionKeys.existingSecret, or encryptionKeys.create with encryptionKeys.keys" }}
{{- end }}
{{- if and .Values.encryptionKeys.create (not .Values.encryptionKeys.existingSecret) (not .Values.encryptionKeys.keys) }}
{{- fail "encryptionKeys.create needs encryptionKeys.keys (kid:base64-32-bytes)" }}
{{- end }}
{{- /* preStop pause, then the app's drain of up to 10 s, then a margin. */}}
{{- if le (int .Values.terminationGracePeriodSeconds) (add (int .Values.preStop.seconds) 10) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStop.seconds (%d) + the 10 s drain" (int .Values.terminationGracePeriodSeconds) (int .Values.preStop.seconds)) }}
{{- end }}
{{- end }}
