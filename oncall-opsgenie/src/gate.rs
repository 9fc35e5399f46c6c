//! [`Gate`]: how many requests of a connection are in flight at once, a limit that moves with the
//! adaptive pacer's window ([`Pacer::in_flight_limit`](oncall_core::pacing::Pacer::in_flight_limit))
//! between 1 and the connection's maximum concurrency.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Semaphore, SemaphorePermit};

/// A semaphore whose number of permits can shrink while permits are out: a shrink takes the
/// permits that are free at once and owes the rest, paid by the next permits given back.
#[derive(Debug)]
pub(crate) struct Gate {
    permits: Semaphore,
    /// The limit now, and the permits still owed to a shrink.
    sizing: Mutex<Sizing>,
    max: usize,
}

#[derive(Debug, Clone, Copy)]
struct Sizing {
    limit: usize,
    owed: usize,
}

/// One request's place in the gate, given back when dropped.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    gate: &'a Gate,
    permit: Option<SemaphorePermit<'a>>,
}

impl Gate {
    /// A gate of `max` places (at least 1, at most [`Semaphore::MAX_PERMITS`]), all open.
    pub fn new(max: usize) -> Gate {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Gate {
            permits: Semaphore::new(max),
            sizing: Mutex::new(Sizing {
                limit: max,
                owed: 0,
            }),
            max,
        }
    }

    fn sizing(&self) -> MutexGuard<'_, Sizing> {
        self.sizing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Places open now (in flight or free).
    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.sizing().limit
    }

    /// Waits for a place. `None` only if the semaphore was closed (never, here).
    pub async fn enter(&self) -> Option<Pass<'_>> {
        let permit = self.permits.acquire().await.ok()?;
        Some(Pass {
            gate: self,
            permit: Some(permit),
        })
    }

    /// Sets the number of places to `limit` (clamped to `[1, max]`).
    pub fn resize(&self, limit: usize) {
        let limit = limit.clamp(1, self.max);
        let mut sizing = self.sizing();
        if limit > sizing.limit {
            let grow = limit - sizing.limit;
            let forgiven = grow.min(sizing.owed);
            sizing.owed -= forgiven;
            self.permits.add_permits(grow - forgiven);
        } else if limit < sizing.limit {
            let shrink = sizing.limit - limit;
            let taken = self.permits.forget_permits(shrink);
            sizing.owed += shrink - taken;
        }
        sizing.limit = limit;
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let mut sizing = self.gate.sizing();
        if sizing.owed > 0 {
            sizing.owed -= 1;
            permit.forget();
        } else {
            drop(permit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shrink_while_places_are_taken_is_paid_as_they_come_back() {
        let gate = Gate::new(4);
        let a = gate.enter().await.unwrap();
        let b = gate.enter().await.unwrap();
        let c = gate.enter().await.unwrap();
        gate.resize(1);
        assert_eq!(gate.limit(), 1);
        assert_eq!(
            gate.permits.available_permits(),
            0,
            "the free place is taken"
        );
        drop(a);
        drop(b);
        assert_eq!(
            gate.permits.available_permits(),
            0,
            "both paid what was owed"
        );
        drop(c);
        assert_eq!(gate.permits.available_permits(), 1, "one place, free");
        gate.resize(3);
        assert_eq!(gate.permits.available_permits(), 3);
        gate.resize(100);
        assert_eq!(gate.limit(), 4, "never beyond the maximum");
        assert_eq!(gate.permits.available_permits(), 4);
        gate.resize(0);
        assert_eq!(gate.limit(), 1, "never below one");
    }

    #[tokio::test]
    async fn a_grow_forgives_what_a_shrink_still_owed() {
        let gate = Gate::new(3);
        let passes = [
            gate.enter().await.unwrap(),
            gate.enter().await.unwrap(),
            gate.enter().await.unwrap(),
        ];
        gate.resize(1); // owes 2
        gate.resize(2); // owes 1
        drop(passes);
        assert_eq!(gate.permits.available_permits(), 2);
    }
}
