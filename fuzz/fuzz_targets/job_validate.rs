//! Any MessagePack as a job request body: validation never panics, and a job it accepts, written back to its wire
//! form, is accepted again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsoa_codec::{MsgpackSerializer, Serializer};
use rsoa_protocol::JobRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = MsgpackSerializer::default().decode(data) else {
        return;
    };
    if let Ok(job) = JobRequest::validate(value) {
        let wire = job.to_value();
        let again = JobRequest::validate(wire.clone()).expect("a valid job's wire form validates");
        assert!(again.to_value().same_as(&wire));
    }
});
