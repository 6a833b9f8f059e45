//! A notifier that sends nothing: it keeps every notice the engine handed it, with the names
//! of the targets that wanted it, for tests of what is announced and with which numbers.

use std::sync::Mutex;

use runway_engine::notify::Notifier;
use runway_engine::router::BoxFuture;
use runway_wire::notice::{Delivery, Notice, NotifySpec};

#[derive(Default)]
pub struct FakeNotifier {
    notices: Mutex<Vec<(Vec<String>, Notice)>>,
}

impl FakeNotifier {
    /// Every notice so far, with the targets that wanted it, in order.
    pub fn notices(&self) -> Vec<(Vec<String>, Notice)> {
        self.notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Notifier for FakeNotifier {
    fn notify(&self, targets: &[NotifySpec], notice: Notice) {
        let wanted: Vec<String> = targets
            .iter()
            .filter(|t| t.wants(notice.kind))
            .map(|t| t.name.clone())
            .collect();
        if !wanted.is_empty() {
            self.notices
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((wanted, notice));
        }
    }

    fn send_now<'a>(
        &'a self,
        targets: &'a [NotifySpec],
        notice: Notice,
    ) -> BoxFuture<'a, Vec<Delivery>> {
        self.notify(targets, notice);
        Box::pin(async { Vec::new() })
    }
}
