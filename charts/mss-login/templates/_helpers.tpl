{{/* Names, labels and the pieces both topologies share. */}}

{{- define "mss-login.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mss-login.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "mss-login.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "mss-login.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* selectorLabels: call with (dict "ctx" $ "component" "authserver"). */}}
{{- define "mss-login.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mss-login.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "mss-login.sqlite" -}}
{{- if eq .Values.database.backend "sqlite" }}true{{ end }}
{{- end }}

{{/* The pod that serves the auth server: the shared pod with SQLite, its own Deployment otherwise. */}}
{{- define "mss-login.authserverComponent" -}}
{{- if include "mss-login.sqlite" . }}server{{ else }}authserver{{ end }}
{{- end }}

{{- define "mss-login.managerComponent" -}}
{{- if include "mss-login.sqlite" . }}server{{ else }}manager{{ end }}
{{- end }}

{{- define "mss-login.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-manager" (include "mss-login.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mss-login.secretKeySecret" -}}
{{- default (printf "%s-secret-key" (include "mss-login.fullname" .)) .Values.secretKey.existingSecret }}
{{- end }}

{{- define "mss-login.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* config.json: the user's keys plus upstream_url; nothing else, the defaults stay in the binary. */}}
{{- define "mss-login.configJSON" -}}
{{- $c := deepCopy .Values.config }}
{{- $_ := set $c "upstream_url" .Values.upstream.url }}
{{- toPrettyJson $c }}
{{- end }}

{{/* Environment both processes need: data dir, SECRET_KEY, the database connection. */}}
{{- define "mss-login.env" -}}
- name: MSS_LOGIN_DATA_DIR
  value: /data
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "mss-login.secretKeySecret" . }}
      key: {{ .Values.secretKey.key }}
- name: USERS_DB_BACKEND
  value: {{ .Values.database.backend }}
{{- if include "mss-login.sqlite" . }}
- name: USERS_DB_SQLITE_PATH
  value: /data/mss_login_data.db
{{- else }}
{{- $p := upper (ternary "POSTGRES" "MYSQL" (eq .Values.database.backend "postgresql")) }}
- name: USERS_DB_{{ $p }}_HOST
  value: {{ .Values.database.host | quote }}
- name: USERS_DB_{{ $p }}_PORT
  value: {{ .Values.database.port | default (ternary 5432 3306 (eq .Values.database.backend "postgresql")) | quote }}
- name: USERS_DB_{{ $p }}_DATABASE
  value: {{ .Values.database.name | quote }}
- name: USERS_DB_{{ $p }}_USER
  value: {{ .Values.database.user | quote }}
- name: USERS_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.passwordSecret.name }}
      key: {{ .Values.database.passwordSecret.key }}
{{- end }}
{{- end }}

{{/* restricted Pod Security Standard, pod level. */}}
{{- define "mss-login.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* restricted Pod Security Standard, container level. */}}
{{- define "mss-login.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* The manager container. */}}
{{- define "mss-login.managerContainer" -}}
- name: manager
  image: {{ include "mss-login.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
  - manager
  - --config=/etc/mss-login/config.json
  - --health-probe-bind-address=:8081
  - --metrics-bind-address={{ if .Values.manager.metrics.enabled }}:8443{{ else }}0{{ end }}
  - --resync-period={{ .Values.manager.resyncPeriod }}
  {{- if or .Values.manager.leaderElect (not (include "mss-login.sqlite" .)) }}
  - --leader-elect
  {{- end }}
  {{- if .Values.webhook.enabled }}
  # The S3Mount pod webhook (docs/s3.md, templates/webhook.yaml), with the manager's own
  # certificate or cert-manager's.
  - --webhook-port={{ .Values.webhook.port }}
  - --webhook-cert-dir=/tmp/webhook-certs
  {{- if .Values.webhook.certManager.enabled }}
  - --webhook-certs=external
  {{- else }}
  - --webhook-certs=self
  - --webhook-service={{ include "mss-login.fullname" . }}-webhook
  - --webhook-config-name={{ include "mss-login.fullname" . }}-s3mount
  - --webhook-cert-secret={{ include "mss-login.fullname" . }}-webhook-cert
  {{- end }}
  {{- else }}
  - --s3-webhook=false
  {{- end }}
  {{- with .Values.manager.extraArgs }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  env:
  - name: POD_NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
  # The image of the s3sync sidecar the webhook injects: this very image.
  - name: MSS_LOGIN_IMAGE
    value: {{ include "mss-login.image" . }}
  {{- include "mss-login.env" . | nindent 2 }}
  {{- with .Values.manager.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  ports:
  - {name: probes, containerPort: 8081}
  {{- if .Values.manager.metrics.enabled }}
  - {name: manager-metrics, containerPort: 8443}
  {{- end }}
  {{- if .Values.webhook.enabled }}
  - {name: webhook, containerPort: {{ .Values.webhook.port }}}
  {{- end }}
  livenessProbe:
    httpGet: {path: /healthz, port: probes}
    initialDelaySeconds: 15
  readinessProbe:
    httpGet: {path: /readyz, port: probes}
    initialDelaySeconds: 5
  resources:
    {{- toYaml .Values.manager.resources | nindent 4 }}
  securityContext:
    {{- include "mss-login.securityContext" . | nindent 4 }}
  volumeMounts:
  - {name: config, mountPath: /etc/mss-login, readOnly: true}
  - {name: data, mountPath: /data}
  - {name: tmp, mountPath: /tmp}
  {{- if and .Values.webhook.enabled .Values.webhook.certManager.enabled }}
  - {name: webhook-certs, mountPath: /tmp/webhook-certs, readOnly: true}
  {{- end }}
  # The only container with Kubernetes credentials (the pod does not automount them).
  - {name: kube-api-access, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}
{{- end }}

{{/* The auth server container. */}}
{{- define "mss-login.authserverContainer" -}}
- name: authserver
  image: {{ include "mss-login.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: [authserver, --config=/etc/mss-login/config.json]
  env:
  {{- include "mss-login.env" . | nindent 2 }}
  {{- with .Values.authserver.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  ports:
  - {name: http, containerPort: 8080}
  - {name: metrics, containerPort: 9090}
  livenessProbe:
    httpGet: {path: /healthz, port: http}
    initialDelaySeconds: 5
  readinessProbe:
    httpGet: {path: /readyz, port: http}
    initialDelaySeconds: 2
  resources:
    {{- toYaml .Values.authserver.resources | nindent 4 }}
  securityContext:
    {{- include "mss-login.securityContext" . | nindent 4 }}
  volumeMounts:
  - {name: config, mountPath: /etc/mss-login, readOnly: true}
  - {name: data, mountPath: /data}
  - {name: tmp, mountPath: /tmp}
{{- end }}

{{/* The projected service-account token for the manager container only. */}}
{{- define "mss-login.kubeAPIAccessVolume" -}}
- name: kube-api-access
  projected:
    defaultMode: 0444
    sources:
    - serviceAccountToken:
        path: token
        expirationSeconds: 3607
    - configMap:
        name: kube-root-ca.crt
        items: [{key: ca.crt, path: ca.crt}]
    - downwardAPI:
        items:
        - path: namespace
          fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}
{{- end }}

{{/* Pod-level settings both topologies share. */}}
{{- define "mss-login.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "mss-login.podSecurityContext" . | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* Pod template metadata: labels and a checksum that restarts pods when config.json changes. */}}
{{- define "mss-login.podMetadata" -}}
labels:
  {{- include "mss-login.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 2 }}
  {{- with .ctx.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include "mss-login.configJSON" .ctx | sha256sum }}
  {{- with .ctx.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The manager pod's volume with cert-manager's webhook certificate (when asked). */}}
{{- define "mss-login.webhookCertVolume" -}}
{{- if and .Values.webhook.enabled .Values.webhook.certManager.enabled }}
- name: webhook-certs
  secret:
    secretName: {{ include "mss-login.fullname" . }}-webhook-tls
    # Until cert-manager has issued it only the webhook waits (in the SQLite layout the auth
    # server shares this pod and must not wait with it).
    optional: true
{{- end }}
{{- end }}
