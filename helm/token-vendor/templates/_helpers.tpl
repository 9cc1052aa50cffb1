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

{{/* The `helm test` pod: its own component, so the Service never selects it. */}}
{{- define "token-vendor.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "token-vendor.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
{{- end }}

{{- define "token-vendor.labels" -}}
{{ include "token-vendor.selectorLabels" . }}
{{ include "token-vendor.releaseLabels" . }}
{{- end }}

{{/* Labels of every object beside those that select it, `commonLabels` included. */}}
{{- define "token-vendor.releaseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
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

{{/* Key and certificate files: same rule, off by default. Empty: no credential-files folder. */}}
{{- define "token-vendor.credentialFilesName" -}}
{{- if .Values.credentialFiles.existingSecret }}
{{- .Values.credentialFiles.existingSecret }}
{{- else if .Values.credentialFiles.create }}
{{- printf "%s-credential-files" (include "token-vendor.fullname" .) }}
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

{{/* Where the Redis CA Secret is mounted (REDIS_TLS_CA_FILE points inside). */}}
{{- define "token-vendor.redisCaDir" -}}
/var/run/secrets/token-vendor/redis-ca
{{- end }}

{{/* Where Redis's client certificate Secret is mounted (REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE point inside). */}}
{{- define "token-vendor.redisClientDir" -}}
/var/run/secrets/token-vendor/redis-client
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
The Secret key a client's secret is read from: its `secretKey`, else
<environment>.<clientId> with each character a Secret key cannot hold replaced
by "_", so one client id has its own secret in each environment.
*/}}
{{- define "token-vendor.clientSecretKey" -}}
{{- if .secretKey }}{{ .secretKey }}{{ else }}{{ regexReplaceAll "[^-._a-zA-Z0-9]" (printf "%s.%s" .environment .clientId) "_" }}{{ end }}
{{- end }}

{{/*
Fails unless the file at `path`, when it lies in a mounted folder, can be
there: the folder's Secret is mounted and, when the chart creates it, holds the
key. Arguments: dict path, field (for the message), dir, secretName, keys
(the created Secret's data, or nil when it comes from elsewhere), values (where to add it).
*/}}
{{- define "token-vendor.checkMountedFile" -}}
{{- $prefix := printf "%s/" .dir }}
{{- if hasPrefix $prefix .path }}
{{- $key := trimPrefix $prefix .path }}
{{- if not .secretName }}
{{- fail (printf "%s is %s, in %s, but no Secret is mounted there (set %s.existingSecret or %s.create)" .field .path .dir .values .values) }}
{{- end }}
{{- if and (kindIs "map" .keys) (not (hasKey .keys $key)) }}
{{- fail (printf "%s is %s but %s has no key %q: add it to %s" .field .path .secretName $key .values) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The configuration file. A client with neither secretFile nor secretEnv (and an
authentication method that uses a client secret) reads
its Secret key (token-vendor.clientSecretKey) in the mounted client-secrets
folder; when the chart creates that Secret, a client whose key is missing fails
the render naming it. Key and certificate files (caFile, privateKeyFile,
certificateFile, clientCertFile, clientKeyFile) in the credential-files folder are checked the
same way. `secretKey` is the chart's own field and is not rendered.
*/}}
{{- define "token-vendor.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $dir := trimSuffix "/" .Values.clientSecrets.mountPath }}
{{- $secretName := include "token-vendor.clientSecretsName" . }}
{{- $createdKeys := "" }}
{{- if and .Values.clientSecrets.create (not .Values.clientSecrets.existingSecret) }}
{{- $createdKeys = .Values.clientSecrets.secrets | default dict }}
{{- end }}
{{- $filesDir := trimSuffix "/" .Values.credentialFiles.mountPath }}
{{- $filesName := include "token-vendor.credentialFilesName" . }}
{{- $filesKeys := "" }}
{{- if and .Values.credentialFiles.create (not .Values.credentialFiles.existingSecret) }}
{{- $filesKeys = .Values.credentialFiles.files | default dict }}
{{- end }}
{{- $fileCheck := dict "dir" $filesDir "secretName" $filesName "keys" $filesKeys "values" "credentialFiles" }}
{{- range $name, $env := $cfg.environments | default dict }}
{{- with $env.caFile }}
{{- include "token-vendor.checkMountedFile" (merge (dict "path" . "field" (printf "config.environments.%s.caFile" $name)) $fileCheck) }}
{{- end }}
{{- end }}
{{- $clients := list }}
{{- $defaultKeys := dict }}
{{- range $i, $c := $cfg.clients | default list }}
{{- $id := printf "config.clients[%d] (%s/%s)" $i $c.environment $c.clientId }}
{{- if or (hasKey $c "secret") (hasKey $c "clientSecret") }}
{{- fail (printf "%s: a secret is never written inline; put it in clientSecrets.secrets or the existing Secret" $id) }}
{{- end }}
{{- /* private_key_jwt and the mTLS methods authenticate with a key, not a client secret. */}}
{{- $usesSecret := not (has ($c.authMethod | default "client_secret_post") (list "private_key_jwt" "tls_client_auth" "self_signed_tls_client_auth")) }}
{{- if and $c.secretKey (or (not $usesSecret) $c.secretFile $c.secretEnv) }}
{{- fail (printf "%s: secretKey names a key of the client-secrets Secret; it cannot go with secretFile, secretEnv or authMethod %s" $id ($c.authMethod | default "client_secret_post")) }}
{{- end }}
{{- if and $usesSecret (not (or $c.secretFile $c.secretEnv)) }}
{{- $key := include "token-vendor.clientSecretKey" $c }}
{{- if gt (len $key) 253 }}
{{- fail (printf "%s: the Secret key %q is longer than 253 characters: set its secretKey" $id $key) }}
{{- end }}
{{- if not $c.secretKey }}
{{- with get $defaultKeys $key }}
{{- fail (printf "%s and %s both map to the Secret key %q: give one a secretKey" . $id $key) }}
{{- end }}
{{- $_ := set $defaultKeys $key $id }}
{{- end }}
{{- if not $secretName }}
{{- fail (printf "%s has no secret: no secretFile/secretEnv and no client-secrets Secret is mounted (set clientSecrets.existingSecret or clientSecrets.create)" $id) }}
{{- end }}
{{- if and (kindIs "map" $createdKeys) (not (hasKey $createdKeys $key)) }}
{{- fail (printf "%s has no secret: add clientSecrets.secrets.%s (or set its secretKey, secretFile or secretEnv)" $id $key) }}
{{- end }}
{{- $_ := set $c "secretFile" (printf "%s/%s" $dir $key) }}
{{- else if $c.secretFile }}
{{- include "token-vendor.checkMountedFile" (dict "path" $c.secretFile "field" (printf "%s.secretFile" $id) "dir" $dir "secretName" $secretName "keys" $createdKeys "values" "clientSecrets") }}
{{- end }}
{{- range $field := list "privateKeyFile" "certificateFile" "clientCertFile" "clientKeyFile" }}
{{- with get $c $field }}
{{- include "token-vendor.checkMountedFile" (merge (dict "path" . "field" (printf "%s.%s" $id $field)) $fileCheck) }}
{{- end }}
{{- end }}
{{- $_ := unset $c "secretKey" }}
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
{{- if and .Values.redis.auth.existingSecret (not .Values.redis.auth.passwordKey) }}
{{- fail "redis.auth.passwordKey is required with redis.auth.existingSecret" }}
{{- end }}
{{- if and .Values.redis.auth.sentinelPasswordKey (not .Values.redis.sentinels) }}
{{- fail "redis.auth.sentinelPasswordKey needs redis.sentinels" }}
{{- end }}
{{- if and .Values.credentialFiles.create (not .Values.credentialFiles.existingSecret) (not .Values.credentialFiles.files) }}
{{- fail "credentialFiles.create needs credentialFiles.files (file name: content)" }}
{{- end }}
{{- /* Fields of the pod spec newer than the chart's kubeVersion. */}}
{{- if and (eq .Values.preStop.action "sleep") (semverCompare "<1.30.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "preStop.action sleep needs Kubernetes 1.30 or later (this cluster: %s): use preStop.action exec" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and .Values.encryptionKeys.create (not .Values.encryptionKeys.existingSecret) (not .Values.encryptionKeys.keys) }}
{{- fail "encryptionKeys.create needs encryptionKeys.keys (kid:base64-32-bytes)" }}
{{- end }}
{{- /* preStop pause, then the app's drain of up to 10 s, then a margin. */}}
{{- if le (int .Values.terminationGracePeriodSeconds) (add (int .Values.preStop.seconds) 10) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStop.seconds (%d) + the 10 s drain" (int .Values.terminationGracePeriodSeconds) (int .Values.preStop.seconds)) }}
{{- end }}
{{- end }}
