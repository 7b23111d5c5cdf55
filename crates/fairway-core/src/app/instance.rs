//! The name of this process among an app's instances, which its workers' leases carry.

use std::hash::{BuildHasher, RandomState};

/// The longest host name kept in an instance id.
const MAX_HOST: usize = 63;

/// A name for this process unique among the app's instances: `<host>-<pid>-<random>`. The
/// host name tells operators where an instance runs; the random part keeps ids apart where
/// host and pid repeat (every container's first process is pid 1, and a restarted
/// container keeps its host name).
pub(super) fn instance_id() -> String {
    let random = RandomState::new().hash_one(std::time::SystemTime::now()) as u32;
    format!("{}-{}-{random:08x}", host_name(), std::process::id())
}

/// The host's name (in a container, the container's), in `[A-Za-z0-9._-]`, at most
/// [`MAX_HOST`] characters; `host` when none is found.
fn host_name() -> String {
    let found = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|file| std::fs::read_to_string(file).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = found
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(MAX_HOST)
        .collect();
    if name.is_empty() { "host".to_owned() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_host_and_process_and_differ_between_processes_with_the_same_pid() {
        let (first, second) = (instance_id(), instance_id());
        assert_ne!(first, second, "the random part differs");
        let host = host_name();
        assert!(first.starts_with(&format!("{host}-{}-", std::process::id())), "{first}");
        assert!(!host.is_empty() && host.len() <= MAX_HOST);
        assert!(host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')), "{host}");
    }
}
