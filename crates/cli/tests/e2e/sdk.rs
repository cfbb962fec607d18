//! The official OpenAI and Anthropic Python SDKs against the gateway, with
//! an upstream of every dialect. Runs when `SUBGATE_TEST_PYTHON` names a
//! Python that has `sdk-tests/requirements.txt` installed (CI sets it).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;
use subgate_testkit::mock::{MockUpstream, Output, Scenario};

use crate::matrix::Upstreams;

/// The behaviours the suite asks for by what its prompts say.
fn steer(mock: &MockUpstream, upstream: &str) {
    mock.when_body_contains("18 degrees", Scenario::reply("It is sunny."));
    mock.when_body_contains(
        "USE_TOOLS",
        Scenario::outputs(vec![Output::ToolCall {
            id: "call_weather_1".to_owned(),
            name: "get_weather".to_owned(),
            arguments: r#"{"city":"Paris"}"#.to_owned(),
        }]),
    );
    mock.when_body_contains(
        "THINK_HARD",
        Scenario::outputs(vec![
            Output::Thinking {
                text: "Deep thought.".to_owned(),
                signature: Some(format!("sig-{upstream}")),
            },
            Output::Text("Thought through.".to_owned()),
        ]),
    );
    let error = match upstream {
        "anthropic" => {
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#
        }
        "gemini" => r#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}"#,
        _ => {
            r#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
        }
    };
    mock.when_body_contains(
        "FAIL_RATE",
        // The gateway rests the account as long as the upstream says; the
        // suite pauses after each error check so its next checks find the
        // account back.
        Scenario::error(429, error).header("retry-after-ms", "20"),
    );
}

#[tokio::test]
async fn the_official_sdks_work_against_every_upstream_dialect() {
    let Ok(python) = std::env::var("SUBGATE_TEST_PYTHON") else {
        eprintln!(
            "note: SUBGATE_TEST_PYTHON is not set; the SDK suite is skipped (see sdk-tests/)"
        );
        return;
    };
    let upstreams = Upstreams::start().await;
    for (mock, name) in [
        (&upstreams.chat, "chat"),
        (&upstreams.responses, "responses"),
        (&upstreams.anthropic, "anthropic"),
        (&upstreams.gemini, "gemini"),
    ] {
        steer(mock, name);
    }
    let gateway = &upstreams.gateway;

    let suite = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk-tests/suite.py");
    let run = tokio::process::Command::new(python)
        .args([
            suite,
            "--base-url",
            &gateway.url(""),
            "--models",
            "chat-model,responses-model,claude-model,gemini-model",
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_mins(4), run)
        .await
        .expect("the suite finishes")
        .unwrap();
    check(&output);
}

/// Tallies the suite's JSON lines per client and model and fails on any
/// failed or missing check.
#[expect(
    clippy::print_stderr,
    reason = "the tally per pair is the suite's report"
)]
fn check(output: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let results: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let mut passed: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for result in &results {
        let pair = format!(
            "{} client → {}",
            result["client"].as_str().unwrap(),
            result["model"].as_str().unwrap()
        );
        let entry = passed.entry(pair).or_default();
        entry.1 += 1;
        if result["ok"] == true {
            entry.0 += 1;
        } else {
            failures.push(result.clone());
        }
    }
    for (pair, (ok, all)) in &passed {
        eprintln!("{pair}: {ok}/{all}");
    }
    assert_eq!(
        results.len(),
        76,
        "every check ran\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        failures.is_empty(),
        "SDK checks failed:\n{}",
        failures.iter().fold(String::new(), |mut all, failure| {
            writeln!(all, "{failure}").unwrap();
            all
        })
    );
    assert!(output.status.success());
}
