{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "sloguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, plus the chart name unless the release name contains it.
Truncated to 63 characters (a DNS label).
*/}}
{{- define "sloguard.fullname" -}}
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

{{/* name-version, as the helm.sh/chart label. */}}
{{- define "sloguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "sloguard.labels" -}}
helm.sh/chart: {{ include "sloguard.chart" . }}
{{ include "sloguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sloguard
{{- end }}

{{/* Labels that select the pod (never change them on upgrade: selectors are immutable). */}}
{{- define "sloguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sloguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sloguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sloguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sloguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The StatefulSet's governing Service (headless; not scraped). */}}
{{- define "sloguard.headlessServiceName" -}}
{{- printf "%s-headless" (include "sloguard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Where the checkpoint volume is mounted: SLOGUARD_CHECKPOINT__DIR. */}}
{{- define "sloguard.checkpointDir" -}}
/var/lib/sloguard
{{- end }}

{{/* Where the Kafka TLS Secret is mounted. */}}
{{- define "sloguard.kafkaTlsDir" -}}
/etc/sloguard-kafka-tls
{{- end }}

{{/*
The SLO file's text: `slos` verbatim when a string, as YAML when a mapping, else the chart's
files/slos.yaml.
*/}}
{{- define "sloguard.sloFile" -}}
{{- if kindIs "string" .Values.slos }}
{{- .Values.slos }}
{{- else if .Values.slos }}
{{- toYaml .Values.slos }}
{{- else }}
{{- .Files.Get "files/slos.yaml" }}
{{- end }}
{{- end }}

{{/*
The PrometheusRule's groups as a YAML list: `prometheusRule.groups` when a list, the `groups` of the
rule file it holds when a string, else those of the chart's files/rules.yaml.
*/}}
{{- define "sloguard.ruleGroups" -}}
{{- $groups := .Values.prometheusRule.groups }}
{{- if kindIs "string" $groups }}
{{- $file := fromYaml $groups }}
{{- if hasKey $file "Error" }}
{{- fail (printf "prometheusRule.groups: not a rule file: %s" $file.Error) }}
{{- end }}
{{- $groups = get $file "groups" }}
{{- else if not $groups }}
{{- $groups = get (.Files.Get "files/rules.yaml" | fromYaml) "groups" }}
{{- end }}
{{- if not (kindIs "slice" $groups) }}
{{- fail "prometheusRule.groups: expected a list of rule groups or a rule file with `groups:` (sloguard rules --format rules)" }}
{{- end }}
{{- toYaml $groups }}
{{- end }}

{{/* A settings value as an environment variable's string (numbers without exponent: 1000000, not 1e+06). */}}
{{- define "sloguard.envValue" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/*
Cross-field checks the schema cannot express; `fail` names the values to fix. Included by the
StatefulSet, so every render runs them.
*/}}
{{- define "sloguard.validate" -}}
{{- $fullname := include "sloguard.fullname" . }}
{{- if gt (len $fullname) 52 }}
{{- fail (printf "the full name %s has %d characters, more than 52: the StatefulSet's pods would get a controller-revision-hash label longer than 63 (set fullnameOverride)" $fullname (len $fullname)) }}
{{- end }}
{{- $kafka := .Values.kafka }}
{{- $protocol := $kafka.securityProtocol }}
{{- $sasl := $kafka.sasl }}
{{- $tls := $kafka.tls }}
{{- if hasPrefix "SASL_" $protocol }}
{{- if not $sasl.mechanism }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)" $protocol) }}
{{- end }}
{{- if not (or $sasl.username $sasl.usernameKey) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.username (or kafka.sasl.usernameKey)" $protocol) }}
{{- end }}
{{- if not $sasl.existingSecret }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.existingSecret: the Secret holding the SASL password (key kafka.sasl.passwordKey)" $protocol) }}
{{- end }}
{{- else if or $sasl.mechanism $sasl.username $sasl.usernameKey $sasl.existingSecret }}
{{- fail (printf "kafka.sasl is set but kafka.securityProtocol is %s, not SASL_PLAINTEXT or SASL_SSL" $protocol) }}
{{- end }}
{{- if $tls.existingSecret }}
{{- if not (hasSuffix "SSL" $protocol) }}
{{- fail (printf "kafka.tls.existingSecret is set but kafka.securityProtocol is %s, not SSL or SASL_SSL" $protocol) }}
{{- end }}
{{- if not (or $tls.caKey $tls.certKey) }}
{{- fail "kafka.tls.existingSecret needs kafka.tls.caKey and/or kafka.tls.certKey + kafka.tls.keyKey" }}
{{- end }}
{{- end }}
{{- if ne (empty $tls.certKey) (empty $tls.keyKey) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey go together (the client certificate and its key)" }}
{{- end }}
{{- if and $tls.certKey (not $tls.existingSecret) }}
{{- fail "kafka.tls.certKey needs kafka.tls.existingSecret" }}
{{- end }}
{{- $shutdown := float64 (default 20 (get .Values.settings "SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS")) }}
{{- if le (float64 .Values.terminationGracePeriodSeconds) $shutdown }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than settings.SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS (%v): the kubelet would kill sloguard during its final offset commit" .Values.terminationGracePeriodSeconds $shutdown) }}
{{- end }}
{{- end }}
