{{/* Names and labels */}}
{{- define "realconnect.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "realconnect.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "ingest") */}}
{{- define "realconnect.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "realconnect.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "realconnect.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image, never a moving tag */}}
{{- define "realconnect.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if or (eq $tag "latest") (eq $tag "") -}}
{{- fail "image.tag must name a release (not \"latest\"): a rollout must say what it runs" -}}
{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{/* Checks that fail the render with a clear message */}}
{{- define "realconnect.checks" -}}
{{- if not .Values.secrets.existingSecret -}}
{{- fail "secrets.existingSecret must name a Secret with REALCONNECT_ADMIN_TOKEN and REALCONNECT_NOTIFIER__WEBHOOK_KEY: secrets never go in values" -}}
{{- end -}}
{{- range $name := list "normalizer" "matcher" "notifier" -}}
{{- $w := index $.Values $name -}}
{{- if gt (int $w.replicas) (int $.Values.kafka.partitions) -}}
{{- fail (printf "%s.replicas (%d) is more than kafka.partitions (%d): the extra pods would sit idle" $name (int $w.replicas) (int $.Values.kafka.partitions)) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicas) (int .Values.kafka.partitions)) -}}
{{- fail "keda.minReplicas is more than kafka.partitions" -}}
{{- end -}}
{{- end -}}

{{/* Environment every container gets; secrets from the Secret only */}}
{{- define "realconnect.env" -}}
- name: REALCONNECT_ENV
  value: {{ .Values.env | quote }}
- name: REALCONNECT_KAFKA__BOOTSTRAP_SERVERS
  value: {{ include "realconnect.bootstrap" . | quote }}
- name: REALCONNECT_KAFKA__PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: REALCONNECT_KAFKA__REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
{{- if .Values.redis.url }}
- name: REALCONNECT_REDIS__URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
- name: REALCONNECT_FEEDS__PUBLIC_URL
  value: {{ .Values.publicUrl | quote }}
- name: REALCONNECT_WORKER_WEB_HOST
  value: "0.0.0.0"
- name: REALCONNECT_MATCHER__DATA_DIR
  value: /home/realconnect/data/matcher
- name: REALCONNECT_NOTIFIER__DATA_DIR
  value: /home/realconnect/data/notifier
- name: REALCONNECT_NORMALIZER__DATA_DIR
  value: /home/realconnect/data/normalizer
- name: REALCONNECT_MATCHER__STANDBY_REPLICAS
  value: {{ .Values.matcher.standbyReplicas | quote }}
- name: REALCONNECT_CONSOLE__HEALTH_URLS
  value: {{ include "realconnect.healthUrls" . | quote }}
{{- range $k, $v := .Values.extraEnv }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{- define "realconnect.envFrom" -}}
- secretRef:
    name: {{ .Values.secrets.existingSecret }}
{{- end -}}

{{- define "realconnect.bootstrap" -}}
{{- if .Values.kafka.strimzi.enabled -}}
{{- printf "%s-kafka-bootstrap:9092" (include "realconnect.fullname" .) -}}
{{- else -}}
{{- .Values.kafka.bootstrapServers -}}
{{- end -}}
{{- end -}}

{{- define "realconnect.healthUrls" -}}
{{- $f := include "realconnect.fullname" . -}}
{{- $urls := dict
  "ingest" (printf "http://%s-ingest:%d/healthz" $f (int .Values.ingest.port))
  "feeds" (printf "http://%s-feeds:%d/healthz" $f (int .Values.feeds.port))
  "normalizer" (printf "http://%s-normalizer:%d/healthz" $f (int .Values.normalizer.webPort))
  "matcher" (printf "http://%s-matcher:%d/healthz" $f (int .Values.matcher.webPort))
  "notifier" (printf "http://%s-notifier:%d/healthz" $f (int .Values.notifier.webPort)) -}}
{{- toJson $urls -}}
{{- end -}}

{{/* Volumes every pod mounts: a writable /tmp (the root filesystem is read-only) */}}
{{- define "realconnect.tmp" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}
