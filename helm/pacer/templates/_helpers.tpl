{{/*
Most helpers here take a context dict, not the usual root:

  root  the template root (.Release, .Chart, .Files)
  v     pacer's values

because the sidecar templates are also called from a parent chart that has pacer as a
dependency, where the root is the parent's and pacer's values are .Values.pacer. Names are built
from the fixed chart name "pacer" for the same reason, so the parent's templates and this chart
agree on the ConfigMap's name.
*/}}

{{- define "pacer.name" -}}
{{- default "pacer" .v.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pacer.fullname" -}}
{{- if .v.fullnameOverride -}}
{{- .v.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "pacer" .v.nameOverride -}}
{{- if contains $name .root.Release.Name -}}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .root.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The admin Service's name: the fullname, shortened so "-admin" still fits in 63. */}}
{{- define "pacer.adminName" -}}
{{- printf "%s-admin" (include "pacer.fullname" . | trunc 57 | trimSuffix "-") -}}
{{- end -}}

{{- define "pacer.serviceAccountName" -}}
{{- if .v.serviceAccount.create -}}
{{- default (include "pacer.fullname" .) .v.serviceAccount.name -}}
{{- else -}}
{{- default "default" .v.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pacer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pacer.name" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "pacer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pacer.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "pacer.image" -}}
{{- printf "%s:%s" .v.image.repository (.v.image.tag | default .root.Chart.AppVersion | toString) -}}
{{- end -}}

{{/* host:port, with brackets around an IPv6 host. */}}
{{- define "pacer.hostPort" -}}
{{- $host := index . 0 -}}
{{- if contains ":" $host -}}
{{- printf "[%s]:%v" $host (index . 1) -}}
{{- else -}}
{{- printf "%s:%v" $host (index . 1) -}}
{{- end -}}
{{- end -}}

{{/* Where the CA lives in the container: the Secret's files, or pacer's own in an emptyDir. */}}
{{- define "pacer.caDir" -}}/var/run/pacer/ca{{- end -}}

{{/*
pacer.yaml: the user's config plus the keys the chart owns. listen and admin follow the ports
the Service, the probes and the container declare, so they cannot drift apart; intercept points
at the mounted CA.
*/}}
{{- define "pacer.config" -}}
{{- $v := .v -}}
{{- range $key := list "listen" "admin" "intercept" -}}
{{- if hasKey $v.config $key -}}
{{- fail (printf "config.%s is set by the chart (listen from service.port and mode, admin from admin.port, intercept from ca); remove it from config" $key) -}}
{{- end -}}
{{- end -}}
{{- if eq (int $v.service.port) (int $v.admin.port) -}}
{{- fail (printf "service.port and admin.port are both %v; give the admin listener its own port" $v.service.port) -}}
{{- end -}}
{{- $proxyHost := ternary "127.0.0.1" $v.bindAddress (eq $v.mode "sidecar") -}}
# listen, admin and intercept: set by the chart from service.port, admin.port and ca.
listen: {{ include "pacer.hostPort" (list $proxyHost $v.service.port) | quote }}
admin: {{ include "pacer.hostPort" (list $v.bindAddress $v.admin.port) | quote }}
{{- if $v.ca.enabled }}
intercept:
  ca_cert: {{ include "pacer.caDir" . }}/ca.crt
  ca_key: {{ include "pacer.caDir" . }}/ca.key
{{- end }}
{{- include "pacer.sharedConfig" . }}
# The rest: the chart's `config` value.
{{ with $v.config }}{{ toYaml . }}{{ end }}
{{- end -}}

{{/*
The `shared:` section, from the shared values, when shared.redis.url is set. The secrets reach
pacer as environment variables (pacer.sharedEnv), never through the ConfigMap.
*/}}
{{- define "pacer.sharedConfig" -}}
{{- $v := .v -}}
{{- $s := $v.shared | default dict -}}
{{- $url := (($s.redis | default dict).url | default "") -}}
{{- if $url -}}
{{- if hasKey $v.config "shared" -}}
{{- fail "config.shared is set by the chart from the shared values; remove it from config" -}}
{{- end -}}
{{- if not (($s.keySecret | default dict).existingSecret) -}}
{{- fail "shared.keySecret.existingSecret is required with shared.redis.url: a Secret with the HMAC secret that keys in Redis are made with" -}}
{{- end }}
# shared: set by the chart from the shared values; instances is replicaCount.
shared:
  redis: {{ $url | quote }}
  key_prefix: {{ $s.keyPrefix | default (include "pacer.fullname" .) | quote }}
  key_secret_env: PACER_SHARED_SECRET
  timeout: {{ $s.timeout | default "50ms" | quote }}
  on_unavailable: {{ $s.onUnavailable | default "local" | quote }}
  instances: {{ max 1 (int $v.replicaCount) }}
{{- end -}}
{{- end -}}

{{/* The environment the shared section reads: the key secret, and the Redis password. */}}
{{- define "pacer.sharedEnv" -}}
{{- $v := .v -}}
{{- $s := $v.shared | default dict -}}
{{- if (($s.redis | default dict).url) }}
- name: PACER_SHARED_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $s.keySecret.existingSecret | quote }}
      key: {{ $s.keySecret.key | default "secret" | quote }}
{{- if $s.redis.existingSecret }}
- name: PACER_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $s.redis.existingSecret | quote }}
      key: {{ $s.redis.passwordKey | default "password" | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The limits in config.limits without `shared: true`, comma-separated (empty when all are shared
or there are none): with more than one replica, each of them lets through replicas times its rate.
*/}}
{{- define "pacer.unsharedLimits" -}}
{{- $names := list -}}
{{- range $name, $limit := (.Values.config.limits | default dict) -}}
{{- if and $limit (not $limit.shared) -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- join ", " $names -}}
{{- end -}}

{{/* Pod annotation value that changes whenever pacer.yaml does, so pods restart with it. */}}
{{/*
Called with a template root: this chart's, or a parent chart's (then pacer's values are
.Values.pacer). A pod spec of your own that runs the sidecar can carry it as an annotation.
*/}}
{{- define "pacer.configChecksum" -}}
{{- include "pacer.config" (dict "root" . "v" (.Values.pacer | default .Values)) | sha256sum -}}
{{- end -}}

{{/*
The pacer container. `sidecar` (bool) in the context: the proxy listens on loopback only (no
proxy port to declare), port names carry a "pacer-" prefix so they cannot clash with the load
tool's, and a native sidecar gets restartPolicy: Always.
*/}}
{{- define "pacer.container" -}}
{{- $v := .v -}}
- name: pacer
  image: {{ include "pacer.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if and .sidecar $v.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args: [proxy, --config, /etc/pacer/pacer.yaml]
  env:
    - name: RUST_LOG
      value: {{ $v.log.level | quote }}
    - name: PACER_LOG_FORMAT
      value: {{ $v.log.format | quote }}
    {{- with include "pacer.sharedEnv" . | trim }}{{ . | nindent 4 }}{{ end }}
  ports:
    {{- if not .sidecar }}
    - name: proxy
      containerPort: {{ $v.service.port }}
      protocol: TCP
    {{- end }}
    - name: {{ ternary "pacer-admin" "admin" (.sidecar | default false) }}
      containerPort: {{ $v.admin.port }}
      protocol: TCP
  startupProbe:
    httpGet: { path: /readyz, port: {{ $v.admin.port }} }
    {{- toYaml $v.probes.startup | nindent 4 }}
  livenessProbe:
    httpGet: { path: /healthz, port: {{ $v.admin.port }} }
    {{- toYaml $v.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet: { path: /readyz, port: {{ $v.admin.port }} }
    {{- toYaml $v.probes.readiness | nindent 4 }}
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: pacer-config
      mountPath: /etc/pacer
      readOnly: true
    {{- if $v.ca.enabled }}
    - name: pacer-ca
      mountPath: {{ include "pacer.caDir" . }}
      readOnly: {{ not (empty $v.ca.existingSecret) }}
    {{- end }}
    {{- with $v.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The pod volumes the pacer container mounts. */}}
{{- define "pacer.volumes" -}}
{{- $v := .v -}}
- name: pacer-config
  configMap:
    name: {{ include "pacer.fullname" . }}
{{- if $v.ca.enabled }}
- name: pacer-ca
  {{- if $v.ca.existingSecret }}
  secret:
    secretName: {{ $v.ca.existingSecret }}
    # 0440: the key readable by its owner and by fsGroup (pacer's group), nobody else.
    defaultMode: 288
    items:
      - { key: {{ $v.ca.certKey }}, path: ca.crt }
      - { key: {{ $v.ca.keyKey }}, path: ca.key }
  {{- else }}
  # pacer creates the CA here at start (the key with mode 0600); it lives as long as the pod.
  emptyDir:
    sizeLimit: 1Mi
  {{- end }}
{{- end }}
{{- with $v.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
For a pod spec of your own (sidecar mode), called with your chart's root context; pacer's values
are then .Values.pacer. A native sidecar (sidecar.native, the default) goes under
initContainers, a plain one under containers:

  initContainers:
    {{- include "pacer.sidecarContainer" . | nindent 4 }}
  volumes:
    {{- include "pacer.sidecarVolumes" . | nindent 4 }}

The load tool then uses the proxy at 127.0.0.1:<service.port>, and may mount the pacer-ca volume
(at include "pacer.caDir") to read the CA certificate, ca.crt. With ca.existingSecret, give the
pod fsGroup: 65532 so pacer can read the Secret's files (mode 0440).
*/}}
{{- define "pacer.sidecarContainer" -}}
{{- include "pacer.container" (dict "root" . "v" (.Values.pacer | default .Values) "sidecar" true) -}}
{{- end -}}

{{- define "pacer.sidecarVolumes" -}}
{{- include "pacer.volumes" (dict "root" . "v" (.Values.pacer | default .Values)) -}}
{{- end -}}
