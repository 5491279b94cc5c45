//! `tools/captions-slurm.sh`: its syntax and refusals, one array task run by hand against the MLLM stand-in, and
//! a whole submission through stand-ins for `sbatch` (runs each job at once, in order) and `vllm serve` (serves
//! the MLLM stand-in on the port it is given).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use oassl_pipeline::config::StubConfig;

use crate::captions_cli::{assert_all_ok, assert_captions_match_scenes, synth_workspace};
use crate::common::{assert_ok, Workspace};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/captions-slurm.sh")
}

/// Runs the script with `mode` in the workspace, the given variables added to a cleaned environment.
fn run_script(ws: &Workspace, mode: &str, vars: &[(&str, String)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(script()).arg(mode).current_dir(ws.path());
    for key in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_JOB_ID",
        "CUDA_VISIBLE_DEVICES",
        "ENDPOINTS",
        "VLLM_API_KEY",
        "STRICT",
        "RETRY_FAILED",
    ] {
        cmd.env_remove(key);
    }
    cmd.env("OASSL", env!("CARGO_BIN_EXE_oassl"))
        .env("CONFIG", ws.config())
        .env("LOG_DIR", ws.path().join("logs"))
        .env("POLL_S", "0.1")
        .env("WAIT_S", "60");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("running bash")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let status = Command::new("chmod").arg("+x").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn script_parses_and_refuses_bad_settings() {
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(script())
        .output()
        .unwrap();
    assert_ok(&syntax);
    let ws = Workspace::with_config("");
    let out = run_script(&ws, "nonsense", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("usage"), "{}", stderr(&out));
    let out = run_script(&ws, "shard", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("SLURM_ARRAY_TASK_ID is not set"),
        "{}",
        stderr(&out)
    );
    let out = run_script(
        &ws,
        "shard",
        &[("SLURM_ARRAY_TASK_ID", "8".into()), ("SHARDS", "8".into())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("shards are 0..7"), "{}", stderr(&out));
    let out = run_script(
        &ws,
        "shard",
        &[
            ("SLURM_ARRAY_TASK_ID", "0".into()),
            ("GPUS_PER_TASK", "3".into()),
            ("TP", "2".into()),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a multiple of TP=2"),
        "{}",
        stderr(&out)
    );

    // A server that dies while loading: the task fails, showing the end of the server's log.
    let bin = ws.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_executable(
        &bin.join("vllm"),
        "#!/usr/bin/env bash\necho 'CUDA out of memory while loading weights'\nexit 1\n",
    );
    let out = run_script(
        &ws,
        "shard",
        &[
            ("SLURM_ARRAY_TASK_ID", "0".into()),
            ("VLLM", bin.join("vllm").display().to_string()),
            ("PORT", free_port_range(1).to_string()),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("exited before answering") && err.contains("CUDA out of memory"),
        "{err}"
    );
}

/// A first port of `n` consecutive ports that nothing listens on now.
fn free_port_range(n: u16) -> u16 {
    for _ in 0..50 {
        let base = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > 65_000 {
            continue;
        }
        let all_free = (0..n).all(|k| TcpListener::bind(("127.0.0.1", base + k)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no {n} free consecutive ports");
}

/// Stand-in for `sbatch`: records its arguments, runs the job at once (each index of `--array=A-B` in turn, with
/// the task's variables and two GPUs in CUDA_VISIBLE_DEVICES) and prints a job id, as `--parsable` does.
const FAKE_SBATCH: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "$*" >>"$FAKE_SLURM/sbatch.args"
job=$((100 + $(wc -l <"$FAKE_SLURM/sbatch.args")))
array=""
while (($#)); do
    case $1 in
        --array=*) array=${1#--array=} ;;
        --*) ;;
        *) break ;;
    esac
    shift
done
script=$1
shift
if [[ -n $array ]]; then
    for ((i = ${array%-*}; i <= ${array#*-}; i++)); do
        code=0
        SLURM_ARRAY_JOB_ID=$job SLURM_ARRAY_TASK_ID=$i CUDA_VISIBLE_DEVICES=3,5 \
            bash "$script" "$@" >"$FAKE_SLURM/job-$job-$i.out" 2>&1 || code=$?
        echo "$job $i $code" >>"$FAKE_SLURM/exits"
    done
else
    code=0
    bash "$script" "$@" >"$FAKE_SLURM/job-$job.out" 2>&1 || code=$?
    echo "$job - $code" >>"$FAKE_SLURM/exits"
fi
echo "$job"
"#;

/// Stand-in for `vllm serve MODEL --port P ...`: records the call and its GPUs, then serves the MLLM stand-in
/// (which answers to the model id `oassl-stub`) on that port.
const FAKE_VLLM: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "gpus=$CUDA_VISIBLE_DEVICES $*" >>"$FAKE_SLURM/vllm.calls"
port=""
while (($#)); do
    if [[ $1 == --port ]]; then port=$2; fi
    shift
done
exec "$OASSL" --config "$CONFIG" mllm-stub --port "$port"
"#;

#[test]
fn a_task_by_hand_then_a_submission_caption_every_shard_and_merge() {
    // The config names the model, as a cluster config must: the merge sends no request and reads it there.
    let ws = synth_workspace("model = \"oassl-stub\"");
    let slurm = ws.path().join("slurm");
    let bin = ws.path().join("bin");
    std::fs::create_dir_all(&slurm).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    write_executable(&bin.join("sbatch"), FAKE_SBATCH);
    write_executable(&bin.join("vllm"), FAKE_VLLM);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    // Task 0 of 3 by hand, against a server that is already up.
    let stub = oassl_stub::spawn(&StubConfig::default(), None).unwrap();
    let out = run_script(
        &ws,
        "shard",
        &[
            ("SLURM_ARRAY_TASK_ID", "0".into()),
            ("SHARDS", "3".into()),
            ("ENDPOINTS", stub.base_url()),
        ],
    );
    assert_ok(&out);
    let shard0 = oassl_captions::table::read_table(
        &ws.data().join("captions/captions.shard-0-of-3.parquet"),
    )
    .unwrap();
    assert!(shard0.iter().all(|r| r.status == "ok"), "{shard0:?}");
    let by_hand = stub.stats().chat_requests;
    assert_eq!(by_hand as usize, shard0.len());

    // Then the other two tasks and the merge, each task starting two servers on its two GPUs.
    let port = free_port_range(6);
    let out = run_script(
        &ws,
        "submit",
        &[
            ("PATH", path),
            ("FAKE_SLURM", slurm.display().to_string()),
            ("SHARDS", "3".into()),
            ("ARRAY", "1-2".into()),
            ("GPUS_PER_TASK", "2".into()),
            ("PORT", port.to_string()),
            ("MODEL", "/models/some-mllm".into()),
            ("SERVED_MODEL", "oassl-stub".into()),
            ("VLLM_ARGS", "--max-model-len 8192".into()),
            ("SBATCH_ARGS", "--partition=gpu --time=2:00:00".into()),
        ],
    );
    assert_ok(&out);
    let read = |name: &str| std::fs::read_to_string(slurm.join(name)).unwrap();
    let jobs: Vec<String> = read("sbatch.args").lines().map(str::to_string).collect();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for flag in ["--array=1-2", "--gres=gpu:2", "--partition=gpu"] {
        assert!(jobs[0].contains(flag), "{flag}: {}", jobs[0]);
    }
    assert!(jobs[0].ends_with("captions-slurm.sh shard"), "{}", jobs[0]);
    assert!(
        jobs[1].contains("--dependency=afterok:101")
            && jobs[1].ends_with("captions-slurm.sh merge"),
        "{}",
        jobs[1]
    );
    assert!(
        !jobs[1].contains("--gres"),
        "the merge needs no GPU: {}",
        jobs[1]
    );
    assert_eq!(read("exits"), "101 1 0\n101 2 0\n102 - 0\n", "{}", {
        let logs: Vec<String> = ["job-101-1.out", "job-101-2.out", "job-102.out"]
            .iter()
            .map(|f| std::fs::read_to_string(slurm.join(f)).unwrap_or_default())
            .collect();
        logs.join("\n---\n")
    });

    // Server k of task i on port PORT + 2i + k with the k-th of the task's GPUs, under the served name.
    let calls = read("vllm.calls");
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    for (n, (task, k)) in [(1u16, 0u16), (1, 1), (2, 0), (2, 1)]
        .into_iter()
        .enumerate()
    {
        let gpu = ["3", "5"][usize::from(k)];
        let want = format!(
            "gpus={gpu} serve /models/some-mllm --host 127.0.0.1 --port {} --served-model-name oassl-stub --tensor-parallel-size 1 --max-model-len 8192",
            port + 2 * task + k
        );
        assert_eq!(calls[n], want);
    }
    // Every server was stopped with its task.
    for p in port + 2..port + 6 {
        assert!(
            TcpStream::connect(("127.0.0.1", p)).is_err(),
            "port {p} still answers"
        );
    }
    // Tasks 1 and 2 sent nothing to the first server; the merge wrote one table with every sample.
    assert_eq!(stub.stats().chat_requests, by_hand);
    assert_all_ok(&ws, 10);
    assert_captions_match_scenes(&ws);
}

/// Stand-in for a `vllm serve` whose engine dies under load: it serves the MLLM stand-in answering every
/// caption request with HTTP 500, as vLLM does once its engine is dead, and stops it after the first one.
const DYING_VLLM: &str = r#"#!/usr/bin/env bash
set -euo pipefail
port=""
while (($#)); do
    if [[ $1 == --port ]]; then port=$2; fi
    shift
done
"$OASSL" --config "$CONFIG" mllm-stub --port "$port" --rate-500 1 &
stub=$!
until curl -fsS "http://127.0.0.1:$port/stats" 2>/dev/null | grep -q '"chat_requests":[1-9]'; do
    sleep 0.05
done
kill "$stub"
"#;

#[test]
fn a_server_that_dies_during_the_run_fails_its_task_and_retry_failed_recovers() {
    let ws = synth_workspace("model = \"oassl-stub\"\nmax_attempts = 3");
    let bin = ws.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_executable(&bin.join("vllm"), DYING_VLLM);
    let mut vars = vec![
        ("SLURM_ARRAY_TASK_ID", "0".to_string()),
        ("SHARDS", "1".into()),
        ("VLLM", bin.join("vllm").display().to_string()),
        ("PORT", free_port_range(1).to_string()),
    ];
    // A server that answers to another model id than the one asked for is refused before any request.
    let out = run_script(&ws, "shard", &vars);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("oassl-stub") && err.contains("not OpenGVLab/InternVL2-8B"),
        "{err}"
    );
    assert!(!ws.data().join("captions").exists());

    vars.push(("SERVED_MODEL", "oassl-stub".into()));
    let out = run_script(&ws, "shard", &vars);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("went away during the run") && err.contains("RETRY_FAILED=1"),
        "{err}"
    );
    let keys =
        oassl_captions::table::read_table(&ws.data().join("captions/captions.parquet")).unwrap();
    assert_eq!(keys.len(), 10);
    assert!(keys.iter().all(|r| r.status == "failed"), "{keys:?}");

    // Rows not ok while the server stays up (its answers never parsed, say) pass the task, unless STRICT=1.
    let broken = oassl_stub::spawn(
        &StubConfig {
            rate_500: 1.0,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let mut up = vec![
        ("SLURM_ARRAY_TASK_ID", "0".to_string()),
        ("SHARDS", "1".into()),
        ("ENDPOINTS", broken.base_url()),
        ("RETRY_FAILED", "1".into()),
    ];
    let out = run_script(&ws, "shard", &up);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("some rows are not ok"),
        "{}",
        stderr(&out)
    );
    up.push(("STRICT", "1".into()));
    let out = run_script(&ws, "shard", &up);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // The rerun the message asks for, against a server that answers, captions every row.
    let stub = oassl_stub::spawn(&StubConfig::default(), None).unwrap();
    let out = run_script(
        &ws,
        "shard",
        &[
            ("SLURM_ARRAY_TASK_ID", "0".into()),
            ("SHARDS", "1".into()),
            ("ENDPOINTS", stub.base_url()),
            ("RETRY_FAILED", "1".into()),
        ],
    );
    assert_ok(&out);
    assert_eq!(stub.stats().chat_requests, 10);
    assert_all_ok(&ws, 10);
}
