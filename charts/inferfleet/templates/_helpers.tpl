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
The operator image, "<repository>:<tag>" (tag defaults to the chart's appVersion).
*/}}
{{- define "inferfleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
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
{{- end }}

{{/*
The metrics Service's name; Prometheus (through the ServiceMonitor) uses it as the job label, which
the alerts select on.
*/}}
{{- define "inferfleet.metricsServiceName" -}}
{{- printf "%s-metrics" (include "inferfleet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
