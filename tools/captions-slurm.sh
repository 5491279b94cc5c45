#!/usr/bin/env bash
# Captions a real dataset on a Slurm cluster: a job array of SHARDS tasks, each starting its own vLLM server(s)
# and running `oassl captions --shard I/SHARDS` against them, then one job (after every task succeeded) that runs
# `oassl captions --merge` to write data/captions/captions.parquet. README: "Captioning a real dataset on a
# cluster".
#
#   tools/captions-slurm.sh submit   on the login node: sbatch the array, then the merge with --dependency=afterok
#   tools/captions-slurm.sh shard    one array task (what sbatch runs; runnable by hand, see below)
#   tools/captions-slurm.sh merge    the merge job
#
# Settings (environment variables; sbatch passes the submitting shell's environment to the jobs):
#   CONFIG          pipeline.toml (default: pipeline.toml in the current folder). Its [captions] section must name
#                   the model (`preset` or `model`): the merge sends no request and takes it from there.
#   OASSL           the oassl binary (default: target/release/oassl of this checkout, else `oassl` on PATH)
#   SHARDS          number of shards = array tasks (default 8)
#   ARRAY           array indices to submit (default 0-(SHARDS-1); `3,5` reruns those shards, then the merge)
#   MODEL           what `vllm serve` loads: a Hugging Face repo or a local folder (default OpenGVLab/InternVL2-8B)
#   SERVED_MODEL    the model id the server answers to (default MODEL); must be the config's model id
#   VLLM            the vllm executable (default vllm)
#   VLLM_ARGS       extra `vllm serve` flags, split on whitespace (unset: the README's flags for MODEL)
#   GPUS_PER_TASK   GPUs per array task (default 1)
#   TP              tensor-parallel size of one server (default 1): each task starts GPUS_PER_TASK/TP servers
#   PORT            first port (default 8000): server k of task i listens on PORT + i*servers_per_task + k, so
#                   tasks of one array sharing a node never collide
#   ENDPOINTS       base URLs (`http://host:8000/v1`, space-separated) of servers already running: the task starts
#                   none and uses these
#   WAIT_S          how long to wait for a server to answer (default 1800: loading weights can be slow)
#   POLL_S          seconds between two looks at a server that is not up yet (default 5)
#   LOG_DIR         job and server logs (default captions-logs in the current folder)
#   CPUS_PER_TASK   CPUs per task (default 8: frame extraction and vLLM's image preprocessing)
#   SBATCH_ARGS     extra sbatch flags for every job, split on whitespace (partition, account, time, ...)
#   RETRY_FAILED=1  ask again for captions recorded invalid or failed (`oassl captions --retry-failed`)
#   STRICT=1        fail a task when some of its rows are not ok (by default only a run that stops fails it:
#                   a real dataset has broken clips, and a failed task would cancel the merge)
#
# Without Slurm, one task's part runs by hand against a server that is already up:
#   SLURM_ARRAY_TASK_ID=3 SHARDS=8 ENDPOINTS=http://127.0.0.1:8000/v1 tools/captions-slurm.sh shard
set -euo pipefail

die() {
    echo "captions-slurm: $*" >&2
    exit 2
}

note() {
    echo "captions-slurm: $*" >&2
}

is_count() {
    [[ $1 =~ ^[1-9][0-9]*$ ]]
}

script_path() {
    local dir
    dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    echo "$dir/$(basename "${BASH_SOURCE[0]}")"
}

# Absolute paths, so that jobs started in another folder (and sbatch's copy of this script) find the same files.
resolve_settings() {
    CONFIG=${CONFIG:-pipeline.toml}
    [[ -f $CONFIG ]] || die "config $CONFIG not found (set CONFIG)"
    CONFIG=$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")
    if [[ -z ${OASSL:-} ]]; then
        local repo
        repo=$(dirname "$(dirname "$(script_path)")")
        if [[ -x $repo/target/release/oassl ]]; then
            OASSL=$repo/target/release/oassl
        else
            OASSL=$(command -v oassl) || die "no oassl binary: build it (make build) or set OASSL"
        fi
    fi
    [[ -x $OASSL ]] || die "OASSL=$OASSL is not an executable"
    [[ $OASSL == /* ]] || OASSL=$(cd "$(dirname "$OASSL")" && pwd)/$(basename "$OASSL")
    SHARDS=${SHARDS:-8}
    is_count "$SHARDS" || die "SHARDS=$SHARDS is not a positive whole number"
    LOG_DIR=${LOG_DIR:-$PWD/captions-logs}
    mkdir -p "$LOG_DIR"
    LOG_DIR=$(cd "$LOG_DIR" && pwd)
    export CONFIG OASSL SHARDS LOG_DIR
}

# `vllm serve` flags per model family (README "Captioning with a real MLLM").
default_vllm_args() {
    local common="--max-model-len 8192 --limit-mm-per-prompt {\"image\":1}"
    case $MODEL in
        *InternVL2*) echo "--trust-remote-code $common --mm-processor-kwargs {\"max_dynamic_patch\":1}" ;;
        *) echo "$common" ;;
    esac
}

# curl with the API key (if any) read from stdin, so it never shows in the process list.
http_get() {
    local url=$1
    if [[ -n ${VLLM_API_KEY:-} ]]; then
        printf 'header = "Authorization: Bearer %s"\n' "$VLLM_API_KEY" |
            curl -fsS --max-time 10 -K - "$url"
    else
        curl -fsS --max-time 10 "$url"
    fi
}

# Waits until the server at a base URL answers /health and lists its models (and `want`, when given); gives up
# when `pid` (when given) has exited or after WAIT_S seconds.
wait_for_server() {
    local base=$1 pid=$2 want=$3 log=$4
    local root=${base%/}
    root=${root%/v1}
    local deadline=$((SECONDS + ${WAIT_S:-1800}))
    local models
    while :; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            note "the server for $base exited before answering; the end of $log:"
            tail -n 30 "$log" >&2 || true
            return 1
        fi
        if http_get "$root/health" >/dev/null 2>&1 && models=$(http_get "${base%/}/models" 2>/dev/null); then
            if [[ -z $want || $models == *"\"$want\""* ]]; then
                return 0
            fi
            note "$base serves $models, not $want"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            note "$base did not answer /health and /v1/models within ${WAIT_S:-1800} s${log:+ (log: $log)}"
            return 1
        fi
        sleep "${POLL_S:-5}"
    done
}

SERVER_PIDS=()

stop_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        # Each server leads its own process group (setsid): its engine processes go with it.
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

# Starts this task's vLLM servers on its GPUs and sets ENDPOINT_LIST to their base URLs.
start_servers() {
    local task=$1
    local gpus=${GPUS_PER_TASK:-1} tp=${TP:-1}
    is_count "$gpus" || die "GPUS_PER_TASK=$gpus is not a positive whole number"
    is_count "$tp" || die "TP=$tp is not a positive whole number"
    ((gpus % tp == 0)) || die "GPUS_PER_TASK=$gpus is not a multiple of TP=$tp"
    local servers=$((gpus / tp))
    MODEL=${MODEL:-OpenGVLab/InternVL2-8B}
    SERVED_MODEL=${SERVED_MODEL:-$MODEL}
    local vllm=${VLLM:-vllm}
    command -v "$vllm" >/dev/null || die "$vllm not found (set VLLM to the vllm executable)"
    local -a extra devices
    read -r -a extra <<<"${VLLM_ARGS-$(default_vllm_args)}"
    # Slurm gives the task its GPUs in CUDA_VISIBLE_DEVICES; server k gets the k-th group of TP of them.
    if [[ -n ${CUDA_VISIBLE_DEVICES:-} ]]; then
        IFS=, read -r -a devices <<<"$CUDA_VISIBLE_DEVICES"
    else
        mapfile -t devices < <(seq 0 $((gpus - 1)))
    fi
    ((${#devices[@]} >= gpus)) || die "GPUS_PER_TASK=$gpus but the task sees ${#devices[@]} GPUs (${CUDA_VISIBLE_DEVICES:-none})"
    local base_port=${PORT:-8000}
    is_count "$base_port" || die "PORT=$base_port is not a port number"
    ENDPOINT_LIST=()
    local logs=() k
    trap stop_servers EXIT
    for ((k = 0; k < servers; k++)); do
        local port=$((base_port + task * servers + k))
        ((port < 65536)) || die "port $port is out of range: lower PORT"
        local url="http://127.0.0.1:$port/v1"
        if http_get "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
            die "something already answers on port $port: set PORT to a free range"
        fi
        local slice
        slice=$(IFS=,; echo "${devices[*]:k*tp:tp}")
        local log="$LOG_DIR/vllm-${SLURM_ARRAY_JOB_ID:-local}-$task-$k.log"
        note "task $task: server $k on port $port, GPUs $slice, log $log"
        CUDA_VISIBLE_DEVICES=$slice setsid "$vllm" serve "$MODEL" --host 127.0.0.1 --port "$port" \
            --served-model-name "$SERVED_MODEL" --tensor-parallel-size "$tp" "${extra[@]}" >"$log" 2>&1 &
        SERVER_PIDS+=("$!")
        ENDPOINT_LIST+=("$url")
        logs+=("$log")
    done
    for ((k = 0; k < servers; k++)); do
        wait_for_server "${ENDPOINT_LIST[k]}" "${SERVER_PIDS[k]}" "$SERVED_MODEL" "${logs[k]}" || exit 1
    done
}

# A server that went away during a run with rows not ok (vLLM's engine dies under load: 500s, then the server
# exits) left them recorded `failed`: fail the task then, whatever STRICT says, so the merge does not run on them.
check_servers_survived() {
    local k gone=0
    for ((k = 0; k < ${#ENDPOINT_LIST[@]}; k++)); do
        local url=${ENDPOINT_LIST[k]} pid=${SERVER_PIDS[k]:-}
        local root=${url%/}
        root=${root%/v1}
        if { [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; } || ! http_get "$root/health" >/dev/null 2>&1; then
            note "$url went away during the run"
            gone=1
        fi
    done
    if ((gone)); then
        note "the rows it did not answer are recorded failed: rerun this shard with RETRY_FAILED=1 (README: \"Captioning a real dataset on a cluster\")"
        exit 1
    fi
}

# oassl's exit code 1 means the table is written but some rows are not ok; 2 (or anything else) that it stopped.
finish() {
    local what=$1 code=$2
    if ((code == 1)) && [[ ${STRICT:-0} != 1 ]]; then
        note "$what: some rows are not ok (see its output above); the rest are kept (STRICT=1 fails the task)"
        exit 0
    fi
    exit "$code"
}

run_shard() {
    resolve_settings
    local task=${SLURM_ARRAY_TASK_ID:-}
    [[ $task =~ ^[0-9]+$ ]] || die "SLURM_ARRAY_TASK_ID is not set (or not a number): run this from sbatch, or set it by hand"
    ((task < SHARDS)) || die "array task $task but SHARDS=$SHARDS: shards are 0..$((SHARDS - 1))"
    command -v curl >/dev/null || die "curl not found (needed to wait for the servers)"
    ENDPOINT_LIST=()
    if [[ -n ${ENDPOINTS:-} ]]; then
        read -r -a ENDPOINT_LIST <<<"$ENDPOINTS"
        local url
        for url in "${ENDPOINT_LIST[@]}"; do
            wait_for_server "$url" "" "${SERVED_MODEL:-}" "" || exit 1
        done
    else
        start_servers "$task"
    fi
    local -a args=(--config "$CONFIG" captions --shard "$task/$SHARDS")
    local url
    for url in "${ENDPOINT_LIST[@]}"; do
        args+=(--endpoint "$url")
    done
    if [[ ${RETRY_FAILED:-0} == 1 ]]; then
        args+=(--retry-failed)
    fi
    note "task $task of $SHARDS: $OASSL ${args[*]}"
    local code=0
    "$OASSL" "${args[@]}" || code=$?
    if ((code != 0)); then
        check_servers_survived
    fi
    finish "shard $task/$SHARDS" "$code"
}

run_merge() {
    resolve_settings
    note "$OASSL --config $CONFIG captions --merge"
    local code=0
    "$OASSL" --config "$CONFIG" captions --merge || code=$?
    finish "merge" "$code"
}

submit() {
    resolve_settings
    command -v sbatch >/dev/null || die "sbatch not found: submit from a Slurm login node"
    local array=${ARRAY:-0-$((SHARDS - 1))}
    [[ $array =~ ^[0-9,-]+$ ]] || die "ARRAY=$array: expected indices like 0-7 or 3,5"
    local gpus=${GPUS_PER_TASK:-1} cpus=${CPUS_PER_TASK:-8}
    is_count "$gpus" || die "GPUS_PER_TASK=$gpus is not a positive whole number"
    is_count "$cpus" || die "CPUS_PER_TASK=$cpus is not a positive whole number"
    local -a extra=()
    read -r -a extra <<<"${SBATCH_ARGS:-}"
    local script out job
    script=$(script_path)
    out=$(sbatch --parsable --job-name=oassl-captions --array="$array" --gres="gpu:$gpus" \
        --cpus-per-task="$cpus" --output="$LOG_DIR/shard-%A_%a.out" --export=ALL "${extra[@]}" \
        "$script" shard) || die "sbatch of the shards failed"
    job=${out%%;*}
    [[ $job =~ ^[0-9]+$ ]] || die "sbatch answered $out, not a job id"
    # afterok: the merge starts once every task succeeded; a failed task cancels it instead of leaving it
    # pending forever.
    out=$(sbatch --parsable --job-name=oassl-captions-merge --dependency="afterok:$job" \
        --kill-on-invalid-dep=yes --cpus-per-task="$cpus" --output="$LOG_DIR/merge-%j.out" --export=ALL \
        "${extra[@]}" "$script" merge) || die "sbatch of the merge failed (shards are job $job)"
    echo "shards: job $job (array $array of $SHARDS); merge: job ${out%%;*}; logs in $LOG_DIR"
}

case ${1:-} in
    submit) submit ;;
    shard) run_shard ;;
    merge) run_merge ;;
    *)
        echo "usage: $0 submit|shard|merge (settings in the environment; see the top of this file)" >&2
        exit 2
        ;;
esac
