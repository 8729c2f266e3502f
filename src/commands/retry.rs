//! `scenequeue retry <id>`

use scenequeue_core::config::Services;
use scenequeue_core::retry::Target;
use scenequeue_scheduler::RetryReport;
use uuid::Uuid;

/// Resets what `id` names, publishes the jobs if the broker answers (else they wait pending for the next
/// dispatcher), and prints what was done.
pub async fn run(services: &Services, id: Uuid, json: bool) -> anyhow::Result<()> {
    let pool = super::connect_db(services, 2).await?;
    let broker = super::open_publisher(services).await;
    let publisher = broker.as_ref().ok().map(|(_, publisher)| publisher);
    let mut report = scenequeue_scheduler::retry(&pool, publisher, id, services.max_queued).await?;
    match &broker {
        Ok((connection, _)) => {
            let _ = connection.close(200, "done").await;
        }
        Err(e) => report.not_published = Some(format!("RabbitMQ unreachable: {e}")),
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", render(&report));
    }
    Ok(())
}

/// `1 job`, `2 jobs`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// What a retry did, in a sentence or two.
pub fn render(r: &RetryReport) -> String {
    let what = match r.reset.target {
        Target::Batch(batch) => format!("batch {batch}"),
        Target::Job(job) => format!("job {job} of batch {}", r.reset.batch),
    };
    if r.reset.jobs == 0 {
        return format!(
            "nothing to retry in {what}: no dead job, and no failed scene in a finished job (a job still open is \
             retried by the workers themselves)"
        );
    }
    let mut out =
        format!("{}, {} reset to pending in {what}", count(r.reset.jobs, "job"), count(r.reset.scenes, "scene"));
    if r.reset.reopened {
        out.push_str("; the batch is active again");
    }
    match (r.published, &r.not_published) {
        (Some(n), _) => out.push_str(&format!("\n{} published", count(n as u64, "job"))),
        (None, Some(why)) => {
            out.push_str(&format!("\nnot published ({why}): the jobs wait pending for the scheduler or a worker"))
        }
        (None, None) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use scenequeue_core::ids::{BatchId, JobId};
    use scenequeue_core::retry::Reset;

    fn report(target: Target, jobs: u64, scenes: u64, published: Option<usize>) -> RetryReport {
        let reset = Reset { target, batch: BatchId(uuid::Uuid::nil()), jobs, scenes, reopened: jobs > 0 };
        let not_published = published.is_none().then(|| "RabbitMQ unreachable: refused".to_string());
        RetryReport { reset, published, not_published }
    }

    #[test]
    fn counts_are_singular_or_plural_and_say_where_the_jobs_went() {
        let batch = Target::Batch(BatchId(uuid::Uuid::nil()));
        let text = render(&report(batch, 2, 5, Some(2)));
        assert!(text.starts_with("2 jobs, 5 scenes reset to pending in batch 0000"), "{text}");
        assert!(text.contains("active again") && text.ends_with("2 jobs published"), "{text}");
        let text = render(&report(Target::Job(JobId(uuid::Uuid::nil())), 1, 1, None));
        assert!(text.starts_with("1 job, 1 scene reset to pending in job 0000"), "{text}");
        assert!(text.contains("RabbitMQ unreachable: refused") && text.contains("wait pending"), "{text}");
        let text = render(&report(batch, 0, 0, Some(0)));
        assert!(text.starts_with("nothing to retry in batch"), "{text}");
    }

    #[test]
    fn json_names_the_target_and_the_counts() {
        let r = report(Target::Job(JobId(uuid::Uuid::nil())), 1, 3, Some(1));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["target"]["kind"], "job");
        assert_eq!(
            (json["jobs"].as_u64(), json["scenes"].as_u64(), json["published"].as_u64()),
            (Some(1), Some(3), Some(1))
        );
        assert_eq!(json["reopened"], true);
    }
}
