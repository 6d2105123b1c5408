{{/*
Object names are fixed (the runbook's); they never carry the release name.
*/}}

{{- define "tapio.namespace" -}}
{{- .Values.namespace.name -}}
{{- end -}}

{{- define "tapio.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Labels of every object of a component: (dict "ctx" $ "component" "server") */}}
{{- define "tapio.labels" -}}
app: tapio-{{ .component }}
app.kubernetes.io/name: tapio
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: tapio
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{/* Pod labels: stable (no version) so rollouts do not change them needlessly. */}}
{{- define "tapio.podLabels" -}}
app: tapio-{{ .component }}
app.kubernetes.io/name: tapio
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: tapio
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end -}}

{{/* Selector labels: the same as deploy/kubernetes/, so either can take over the objects. */}}
{{- define "tapio.selector" -}}
app: tapio-{{ .component }}
{{- end -}}
