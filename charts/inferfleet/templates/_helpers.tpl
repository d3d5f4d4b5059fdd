{{/*
The chart name, or nameOverride.
*/}}
{{- define "inferfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified app name: fullnameOverride, else "<release>-<name>" (just the release name when
it already contains the chart name). Truncated to 63 characters (DNS label limit).
*/}}
{{- define "inferfleet.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "inferfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object of the release. (Not app.kubernetes.io/managed-by=inferfleet: that marks the
Deployments and Services the operator itself manages.)
*/}}
{{- define "inferfleet.labels" -}}
helm.sh/chart: {{ include "inferfleet.chart" . }}
{{ include "inferfleet.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: inferfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels (immutable once a Deployment exists: never add to them).
*/}}
{{- define "inferfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inferfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount's name.
*/}}
{{- define "inferfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "inferfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image: "<repository>@<digest>" when image.digest is set, else "<repository>:<tag>" (tag
defaults to the chart's appVersion).
*/}}
{{- define "inferfleet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
A Prometheus duration ("1m30s", "500ms") in milliseconds, for comparing two of them.
*/}}
{{- define "inferfleet.durationMs" -}}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h)" . -1 }}
{{- $n := regexFind "^[0-9]+" . | int }}
{{- $unit := regexFind "(ms|s|m|h)$" . }}
{{- $total = add $total (mul $n (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
The metrics port's name: https-metrics with metrics.secure, else http-metrics.
*/}}
{{- define "inferfleet.metricsPortName" -}}
{{- if .Values.metrics.secure.enabled }}https-metrics{{ else }}http-metrics{{ end }}
{{- end }}

{{/*
The Lease the operator's replicas elect a leader with (fixed in the operator: Config.lease_name).
*/}}
{{- define "inferfleet.leaseName" -}}
inferfleet-operator
{{- end }}

{{/*
Fail early on combinations the schema cannot express.
*/}}
{{- define "inferfleet.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without it every replica would plan and write" }}
{{- end }}
{{- $le := .Values.leaderElection }}
{{- if not (and (lt (float64 $le.retryPeriodSeconds) (float64 $le.renewDeadlineSeconds)) (lt (float64 $le.renewDeadlineSeconds) (float64 $le.leaseDurationSeconds))) }}
{{- fail (printf "leaderElection: need retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds, got %v, %v, %v" $le.retryPeriodSeconds $le.renewDeadlineSeconds $le.leaseDurationSeconds) }}
{{- end }}
{{- $sm := .Values.metrics.serviceMonitor }}
{{- if gt (include "inferfleet.durationMs" $sm.scrapeTimeout | int) (include "inferfleet.durationMs" $sm.interval | int) }}
{{- fail (printf "metrics.serviceMonitor.scrapeTimeout (%s) must not be longer than metrics.serviceMonitor.interval (%s)" $sm.scrapeTimeout $sm.interval) }}
{{- end }}
{{- $pm := .Values.autoscaling.podMonitor }}
{{- $window := .Values.autoscaling.prometheus.window }}
{{- if $pm.enabled }}
{{- if lt (include "inferfleet.durationMs" $window | int) (mul 4 (include "inferfleet.durationMs" $pm.interval | int)) }}
{{- fail (printf "autoscaling.prometheus.window (%s) must be at least 4 x autoscaling.podMonitor.interval (%s): rate() needs several scrapes" $window $pm.interval) }}
{{- end }}
{{- with .Values.autoscaling.prometheus.burstWindow }}
{{- if lt (include "inferfleet.durationMs" . | int) (mul 2 (include "inferfleet.durationMs" $pm.interval | int)) }}
{{- fail (printf "autoscaling.prometheus.burstWindow (%s) must be at least 2 x autoscaling.podMonitor.interval (%s)" . $pm.interval) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.secure.enabled (not .Values.metrics.secure.tlsSecretName) }}
{{- fail "metrics.secure.enabled needs metrics.secure.tlsSecretName: a kubernetes.io/tls Secret with the endpoint's certificate (e.g. from cert-manager)" }}
{{- end }}
{{- end }}

{{/*
The metrics Service's name; Prometheus (through the ServiceMonitor) uses it as the job label, which
the alerts select on.
*/}}
{{- define "inferfleet.metricsServiceName" -}}
{{- printf "%s-metrics" (include "inferfleet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
