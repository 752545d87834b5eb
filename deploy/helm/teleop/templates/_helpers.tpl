{{- define "teleop.labels" -}}
app.kubernetes.io/name: teleop
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "teleop.selector" -}}
app.kubernetes.io/name: teleop
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
