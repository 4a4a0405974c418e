{{- define "ebb.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ebb.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ebb.labels" -}}
{{ include "ebb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ebb.serviceAccountName" -}}
{{- default (include "ebb.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The names a request's Host may use without a token: the Service's. */}}
{{- define "ebb.hosts" -}}
{{- $n := include "ebb.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $n (printf "%s.%s" $n $ns) (printf "%s.%s.svc" $n $ns) (printf "%s.%s.svc.cluster.local" $n $ns) -}}
{{- concat $hosts .Values.http.allowedHosts | toJson -}}
{{- end -}}

{{- define "ebb.checks" -}}
{{- if not (has .Values.state.backend (list "bolt" "kubernetes")) -}}
{{- fail (printf "state.backend is %q: use bolt or kubernetes" .Values.state.backend) -}}
{{- end -}}
{{- if and (eq .Values.state.backend "bolt") (gt (int .Values.replicas) 1) -}}
{{- fail "state.backend=bolt keeps the state in one replica's file: replicas must be 1 (state.backend=kubernetes shares chains over replicas)" -}}
{{- end -}}
{{- end -}}
