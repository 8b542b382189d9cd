//! Giving back the memory a monitor needed only to start its container.
//!
//! Creating a container runs most of the runtime's code (the spec's JSON,
//! mounts, seccomp), and the kernel maps a binary's pages in 64 KiB runs
//! around each fault, so a monitor that then only relays output would keep
//! nearly its whole binary resident, for as long as the container runs.
//! Released just before the monitor first waits, only the code it runs from
//! then on comes back.

use std::ffi::c_void;

/// Returns the allocator's free memory to the kernel, then drops from this
/// process's resident set the pages of its read-only file mappings (code,
/// constants) that were never written. Pages used later fault back in from
/// the page cache, unchanged; written (copied) pages are kept, since
/// dropping them would lose what was written. Nothing is allocated or freed
/// after the pages go (the allocator's code would come straight back).
/// Best effort: the memory is only an economy.
pub fn release_startup_pages() {
    let mut ranges = [(0, 0); 32];
    let mut count = 0;
    let mut stack = None;
    if let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") {
        for (slot, range) in ranges.iter_mut().zip(clean_read_only_file_mappings(&smaps)) {
            *slot = range;
            count += 1;
        }
        stack = stack_mapping(&smaps);
    }
    // SAFETY: malloc_trim only returns glibc's free heap pages; it touches
    // no allocation in use.
    unsafe { libc::malloc_trim(0) };
    for &(start, end) in &ranges[..count] {
        // SAFETY: the range is a whole mapping of a file, read-only and
        // with no anonymous (written) page: MADV_DONTNEED only unmaps its
        // pages, which fault back in with the file's same contents.
        let _ = unsafe {
            rustix::mm::madvise(
                start as *mut c_void,
                end - start,
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
    }
    // The stack the start grew (the runtime's setup runs deep) and no
    // longer uses: the pages below this frame, with a margin for the
    // calls still to come. Free stack holds nothing that must survive; a
    // page touched again comes back zeroed.
    let here = std::ptr::addr_of!(ranges) as usize;
    if let Some((start, _)) = stack {
        let end = (here.saturating_sub(STACK_MARGIN)) & !(PAGE - 1);
        if end > start {
            // SAFETY: [start, end) lies below the live part of the stack
            // (this frame and its callers are above `here`, the calls to
            // come within the margin): no live data is there.
            let _ = unsafe {
                rustix::mm::madvise(
                    start as *mut c_void,
                    end - start,
                    rustix::mm::Advice::LinuxDontNeed,
                )
            };
        }
    }
}

const PAGE: usize = 4096;
/// What the calls after the release may use below the releasing frame.
const STACK_MARGIN: usize = 16 * 1024;

/// The main thread's stack mapping in `smaps`.
fn stack_mapping(smaps: &str) -> Option<(usize, usize)> {
    let line = smaps.lines().find(|line| line.ends_with("[stack]"))?;
    let (start, end) = line.split_whitespace().next()?.split_once('-')?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    ))
}

/// The address ranges of mappings in `smaps` that are backed by a file,
/// not writable, and hold no anonymous page.
fn clean_read_only_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-') {
            let perms = fields.next().unwrap_or_default();
            // offset, device, inode, then the path.
            let inode = fields.nth(2).unwrap_or("0");
            let path = fields.next().unwrap_or_default();
            current = match (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                (Ok(start), Ok(end))
                    if perms.starts_with('r')
                        && !perms.contains('w')
                        && inode != "0"
                        && path.starts_with('/') =>
                {
                    Some((start, end))
                }
                _ => None,
            };
        } else if first == "Anonymous:"
            && let Some(range) = current.take()
            && fields.next() == Some("0")
        {
            ranges.push(range);
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55556974e000-55556978b000 rw-p 00000000 00:00 0                          [heap]
Rss:                 208 kB
Anonymous:           208 kB
7fbff6200000-7fbff62e2000 r--p 00000000 08:01 1234                       /usr/bin/keel-monitor
Rss:                 640 kB
Anonymous:             0 kB
7fbff62e2000-7fbff64ea000 r-xp 000e2000 08:01 1234                       /usr/bin/keel-monitor
Rss:                2016 kB
Anonymous:             0 kB
7fbff64ea000-7fbff6515000 r--p 002ea000 08:01 1234                       /usr/bin/keel-monitor
Rss:                 172 kB
Anonymous:           172 kB
7fbff6515000-7fbff6518000 rw-p 00315000 08:01 1234                       /usr/bin/keel-monitor
Rss:                  12 kB
Anonymous:            12 kB
7fbff6595000-7fbff6597000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   4 kB
Anonymous:             0 kB
";

    #[test]
    fn the_stack_is_found_by_its_name() {
        let smaps =
            "7ffd7f46b000-7ffd7f48c000 rw-p 00000000 00:00 0                          [stack]\n";
        assert_eq!(stack_mapping(smaps), Some((0x7ffd7f46b000, 0x7ffd7f48c000)));
        assert_eq!(stack_mapping(SMAPS), None);
    }

    #[test]
    fn only_unwritten_read_only_file_mappings_are_released() {
        assert_eq!(
            clean_read_only_file_mappings(SMAPS),
            vec![
                (0x7fbff6200000, 0x7fbff62e2000),
                (0x7fbff62e2000, 0x7fbff64ea000)
            ]
        );
    }
}
