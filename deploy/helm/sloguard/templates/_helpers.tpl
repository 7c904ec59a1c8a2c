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
{{- $statefulset := include "sloguard.statefulsetName" . }}
{{- if gt (len $statefulset) 52 }}
{{- fail (printf "the StatefulSet name %s has %d characters, more than 52: the StatefulSet's pods would get a controller-revision-hash label longer than 63 (set fullnameOverride: %d characters at most with mode %s)" $statefulset (len $statefulset) (sub 52 (sub (len $statefulset) (len $fullname))) .Values.mode) }}
{{- end }}
{{- if eq .Values.mode "scaled" }}
{{- $scaled := .Values.scaled }}
{{- $partitions := int $scaled.topics.partialsPartitions }}
{{- if gt (int $scaled.merge.replicas) $partitions }}
{{- fail (printf "scaled.merge.replicas (%d) is more than scaled.topics.partialsPartitions (%d): each partials partition has one stage-2 owner, so the extra pods would own nothing" (int $scaled.merge.replicas) $partitions) }}
{{- end }}
{{- with $scaled.partial.autoscaling }}
{{- if and .enabled (gt (int .minReplicas) (int .maxReplicas)) }}
{{- fail (printf "scaled.partial.autoscaling.minReplicas (%d) is more than maxReplicas (%d)" (int .minReplicas) (int .maxReplicas)) }}
{{- end }}
{{- end }}
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

{{/* The StatefulSet: the single process, or stage 2 (merge) with mode scaled. */}}
{{- define "sloguard.statefulsetName" -}}
{{- if eq .Values.mode "scaled" }}
{{- printf "%s-merge" (include "sloguard.fullname" .) }}
{{- else }}
{{- include "sloguard.fullname" . }}
{{- end }}
{{- end }}

{{/*
Labels that select one stage's pods (mode scaled): the release's plus app.kubernetes.io/component.
Argument: (list $ "partial") or (list $ "merge").
*/}}
{{- define "sloguard.stageSelectorLabels" -}}
{{ include "sloguard.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
The daemon's SLOGUARD_* settings (no secrets) as a YAML mapping: the settings ConfigMap's data, and the
topics Job's environment (a pre-install hook runs before the ConfigMap exists).
*/}}
{{- define "sloguard.settingsData" -}}
{{- $kafka := .Values.kafka }}
{{- $data := dict "SLOGUARD_LISTEN" "0.0.0.0:9464" }}
{{- range $name, $value := .Values.settings }}
{{- if not (kindIs "invalid" $value) }}
{{- $_ := set $data $name (include "sloguard.envValue" $value) }}
{{- end }}
{{- end }}
{{- $servers := $kafka.bootstrapServers }}
{{- if kindIs "slice" $servers }}
{{- $servers = join "," $servers }}
{{- end }}
{{- $_ := set $data "SLOGUARD_KAFKA__BOOTSTRAP_SERVERS" $servers }}
{{- $_ := set $data "SLOGUARD_KAFKA__TOPICS" (join "," $kafka.topics) }}
{{- $_ := set $data "SLOGUARD_KAFKA__GROUP_ID" $kafka.groupId }}
{{- $_ := set $data "SLOGUARD_KAFKA__SECURITY_PROTOCOL" $kafka.securityProtocol }}
{{- $_ := set $data "SLOGUARD_CHECKPOINT__INTERVAL" (include "sloguard.envValue" .Values.checkpoint.interval) }}
{{- $_ := set $data "SLOGUARD_CHECKPOINT__KEEP" (include "sloguard.envValue" .Values.checkpoint.keep) }}
{{- if eq .Values.mode "scaled" }}
{{- $_ := set $data "SLOGUARD_SCALE__PARTIALS_PARTITIONS" (include "sloguard.envValue" .Values.scaled.topics.partialsPartitions) }}
{{- $_ := set $data "SLOGUARD_SCALE__CHECKPOINTS_PARTITIONS" (include "sloguard.envValue" .Values.scaled.topics.checkpointsPartitions) }}
{{- end }}
{{- if hasPrefix "SASL_" $kafka.securityProtocol }}
{{- $_ := set $data "SLOGUARD_KAFKA__SASL_MECHANISM" $kafka.sasl.mechanism }}
{{- if not $kafka.sasl.usernameKey }}
{{- $_ := set $data "SLOGUARD_KAFKA__SASL_USERNAME" $kafka.sasl.username }}
{{- end }}
{{- end }}
{{- with $kafka.tls }}
{{- if .existingSecret }}
{{- $dir := include "sloguard.kafkaTlsDir" $ }}
{{- if .caKey }}
{{- $_ := set $data "SLOGUARD_KAFKA__SSL_CAFILE" (printf "%s/%s" $dir .caKey) }}
{{- end }}
{{- if .certKey }}
{{- $_ := set $data "SLOGUARD_KAFKA__SSL_CERTFILE" (printf "%s/%s" $dir .certKey) }}
{{- $_ := set $data "SLOGUARD_KAFKA__SSL_KEYFILE" (printf "%s/%s" $dir .keyKey) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/* The SASL credentials from their Secret (env entries), with SASL_* protocols. */}}
{{- define "sloguard.kafkaSecretEnv" -}}
{{- $kafka := .Values.kafka }}
{{- if hasPrefix "SASL_" $kafka.securityProtocol }}
{{- if $kafka.sasl.usernameKey }}
- name: SLOGUARD_KAFKA__SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $kafka.sasl.existingSecret }}
      key: {{ $kafka.sasl.usernameKey }}
{{- end }}
- name: SLOGUARD_KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $kafka.sasl.existingSecret }}
      key: {{ $kafka.sasl.passwordKey }}
{{- end }}
{{- end }}

{{/* The Kafka TLS Secret's mount (a volumeMounts entry), when kafka.tls.existingSecret is set. */}}
{{- define "sloguard.kafkaTlsMount" -}}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: {{ include "sloguard.kafkaTlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The Kafka TLS Secret as a volume (a volumes entry), when kafka.tls.existingSecret is set. */}}
{{- define "sloguard.kafkaTlsVolume" -}}
{{- with .Values.kafka.tls }}
{{- if .existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .existingSecret }}
    # Readable by the owner and the pod's fsGroup only.
    defaultMode: 288  # 0440
    items:
      {{- if .caKey }}
      - key: {{ .caKey }}
        path: {{ .caKey }}
      {{- end }}
      {{- if .certKey }}
      - key: {{ .certKey }}
        path: {{ .certKey }}
      - key: {{ .keyKey }}
        path: {{ .keyKey }}
      {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The pod template of a sloguard workload. Argument: a dict with
  root         the chart's context;
  stage        "" (the single process), "partial" (stage 1) or "merge" (stage 2);
  checkpoints  where SLOGUARD_CHECKPOINT__DIR points: "claim" (the StatefulSet's claim template gives the
               volume), "emptyDir", "shared" (the ReadWriteMany claim every stage-2 pod mounts), or ""
               (no directory: stage 1 holds no state; stage 2 checkpoints to its Kafka topic);
  resources    the container's resources.
*/}}
{{- define "sloguard.podTemplate" -}}
{{- $ := .root }}
{{- $values := $.Values }}
{{- $checkpoints := .checkpoints -}}
metadata:
  annotations:
    # Editing the SLO file or the settings rolls the pod.
    checksum/slos: {{ include "sloguard.sloFile" $ | sha256sum }}
    checksum/settings: {{ include (print $.Template.BasePath "/configmap-settings.yaml") $ | sha256sum }}
    {{- with $values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  labels:
    {{- include "sloguard.labels" $ | nindent 4 }}
    {{- with .stage }}
    app.kubernetes.io/component: {{ . }}
    {{- end }}
    {{- with $values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "sloguard.serviceAccountName" $ }}
  # sloguard never talks to the Kubernetes API.
  automountServiceAccountToken: false
  # Keep Service links out of the environment (SLOGUARD_PORT, SLOGUARD_SERVICE_HOST, ... for a Service
  # named sloguard): they share the settings prefix SLOGUARD_.
  enableServiceLinks: false
  # The daemon bounds its own shutdown (final offset commit) by SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS; the
  # kubelet must wait longer than that before SIGKILL (checked when rendering).
  terminationGracePeriodSeconds: {{ int $values.terminationGracePeriodSeconds }}
  {{- with $values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  # fsGroup (default 10001) makes the checkpoint volume writable by the non-root user.
  securityContext:
    {{- toYaml $values.podSecurityContext | nindent 4 }}
  containers:
    - name: sloguard
      image: {{ include "sloguard.image" $ }}
      imagePullPolicy: {{ $values.image.pullPolicy }}
      {{- if .stage }}
      args: ["run", "--config", "/etc/sloguard/slos.yaml", "--stage", {{ quote .stage }}]
      {{- else }}
      args: ["run", "--config", "/etc/sloguard/slos.yaml"]
      {{- end }}
      ports:
        - name: metrics
          containerPort: 9464
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "sloguard.fullname" $ }}-settings
      env:
        - name: PYTHONDONTWRITEBYTECODE
          value: "1"
        {{- if $checkpoints }}
        # Checkpoints (aggregator state + Kafka offsets) on the `checkpoints` volume: restarts keep
        # the error budgets. Set here, next to its mount, not in the settings ConfigMap.
        - name: SLOGUARD_CHECKPOINT__DIR
          value: {{ include "sloguard.checkpointDir" $ }}
        {{- end }}
        {{- with include "sloguard.kafkaSecretEnv" $ }}{{ . | nindent 8 }}{{ end }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: metrics
        {{- toYaml $values.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: metrics
        {{- toYaml $values.readinessProbe | nindent 8 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- toYaml $values.securityContext | nindent 8 }}
      volumeMounts:
        - name: slos
          mountPath: /etc/sloguard
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if $checkpoints }}
        - name: checkpoints
          mountPath: {{ include "sloguard.checkpointDir" $ }}
        {{- end }}
        {{- with include "sloguard.kafkaTlsMount" $ }}{{ . | nindent 8 }}{{ end }}
  volumes:
    - name: slos
      configMap:
        name: {{ include "sloguard.fullname" $ }}-slos
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if eq $checkpoints "emptyDir" }}
    # persistence.enabled=false: checkpoints survive container restarts, not the pod's replacement.
    - name: checkpoints
      emptyDir:
        sizeLimit: {{ quote $values.persistence.size }}
    {{- else if eq $checkpoints "shared" }}
    # Stage 2's checkpoint directory: one ReadWriteMany claim every stage-2 pod mounts (a partition's
    # checkpoints must be readable by whichever pod owns it next).
    - name: checkpoints
      persistentVolumeClaim:
        claimName: {{ include "sloguard.sharedClaimName" $ }}
    {{- end }}
    {{- with include "sloguard.kafkaTlsVolume" $ }}{{ . | nindent 4 }}{{ end }}
  {{- with $values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Stage 2's shared checkpoint claim (scaled.merge.checkpointStore directory). */}}
{{- define "sloguard.sharedClaimName" -}}
{{- default (printf "%s-checkpoints" (include "sloguard.fullname" .)) .Values.scaled.merge.directory.existingClaim }}
{{- end }}
