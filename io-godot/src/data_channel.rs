//! `MultipeerWebRTCDataChannel`: Godot's `WebRTCDataChannel` over one channel of a
//! [`Connection`].

use godot::classes::web_rtc_data_channel::{ChannelState as GdChannelState, WriteMode};
use godot::classes::{IWebRtcDataChannelExtension, WebRtcDataChannelExtension};
use godot::global::{Error, godot_error};
use godot::meta::conv::RawPtr;
use godot::prelude::*;

use crate::engine::{Channel, ChannelState, Connection};
use crate::guard::guarded;
use crate::peer_connection::{Shared, fail};

/// Godot's `WebRTCDataChannel` (through `WebRTCDataChannelExtension`) for one channel of a
/// multipeer peer connection; `STATE_CLOSING` is never reported (a close is immediate).
#[derive(GodotClass)]
#[class(tool, base = WebRtcDataChannelExtension, no_init, rename = MultipeerWebRTCDataChannel)]
pub struct MultipeerWebRtcDataChannel {
    base: Base<WebRtcDataChannelExtension>,
    engine: Shared,
    key: usize,
    write_mode: WriteMode,
    /// The packet handed out by the last `get_packet`: Godot reads it through the pointer
    /// until the next call.
    current: Vec<u8>,
    current_was_string: bool,
    poisoned: bool,
}

impl MultipeerWebRtcDataChannel {
    /// A Godot object for channel `key` of `engine`.
    pub(crate) fn wrap(engine: Shared, key: usize) -> Gd<Self> {
        Gd::from_init_fn(|base| Self {
            base,
            engine,
            key,
            write_mode: WriteMode::BINARY,
            current: Vec::new(),
            current_was_string: false,
            poisoned: false,
        })
    }

    fn get<R>(&self, method: &str, failed: R, body: impl FnOnce(&Channel) -> R) -> R {
        if self.poisoned {
            return failed;
        }
        guarded(method, None, || self.engine.borrow().channel(self.key).map(body)).unwrap_or(failed)
    }

    fn with_engine<R>(
        &mut self,
        method: &str,
        failed: R,
        body: impl FnOnce(&mut Connection, usize) -> R,
    ) -> R {
        if self.poisoned {
            godot_error!("multipeer: {method} on a data channel that failed after a panic");
            return failed;
        }
        let engine = self.engine.clone();
        let key = self.key;
        let mut panicked = true;
        let result = guarded(method, None, || {
            let r = body(&mut engine.borrow_mut(), key);
            panicked = false;
            Some(r)
        });
        if panicked {
            self.poisoned = true;
        }
        result.unwrap_or(failed)
    }
}

#[godot_api]
impl IWebRtcDataChannelExtension for MultipeerWebRtcDataChannel {
    // SAFETY (for Godot's caller): the returned pointer addresses `self.current`, which stays
    // unchanged until the next `get_packet` on this object, as PacketPeer requires.
    #[allow(unsafe_code)]
    unsafe fn get_packet_rawptr(
        &mut self,
        r_buffer: RawPtr<*mut RawPtr<*const u8>>,
        r_buffer_size: RawPtr<*mut i32>,
    ) -> Error {
        let taken = self.with_engine("get_packet", None, |c, key| c.receive(key));
        let Some((data, binary)) = taken else { return Error::ERR_UNAVAILABLE };
        let Ok(size) = i32::try_from(data.len()) else { return Error::ERR_OUT_OF_MEMORY };
        self.current = data;
        self.current_was_string = !binary;
        let (buffer, len) = (r_buffer.ptr(), r_buffer_size.ptr());
        if buffer.is_null() || len.is_null() {
            return Error::ERR_INVALID_PARAMETER;
        }
        // SAFETY: Godot passes valid out-pointers for the buffer address and its size (checked
        // non-null above); the address stays valid as described on this method.
        unsafe {
            *buffer = RawPtr::new(self.current.as_ptr());
            *len = size;
        }
        Error::OK
    }

    #[allow(unsafe_code)]
    unsafe fn put_packet_rawptr(&mut self, p_buffer: RawPtr<*const u8>, p_buffer_size: i32) -> Error {
        let Ok(size) = usize::try_from(p_buffer_size) else { return Error::ERR_INVALID_PARAMETER };
        let buffer = p_buffer.ptr();
        if buffer.is_null() && size > 0 {
            return Error::ERR_INVALID_PARAMETER;
        }
        let data: &[u8] = if size == 0 {
            &[]
        } else {
            // SAFETY: Godot passes a buffer of `p_buffer_size` readable bytes (non-null,
            // checked above) that lives for the duration of this call.
            unsafe { core::slice::from_raw_parts(buffer, size) }
        };
        let binary = self.write_mode == WriteMode::BINARY;
        self.with_engine("put_packet", Error::FAILED, |c, key| match c.send(key, data, binary) {
            Ok(()) => Error::OK,
            Err(e) => fail("put_packet", &e),
        })
    }

    fn get_available_packet_count(&self) -> i32 {
        self.get("get_available_packet_count", 0, |c| i32::try_from(c.available()).unwrap_or(i32::MAX))
    }

    fn get_max_packet_size(&self) -> i32 {
        if self.poisoned {
            return 0;
        }
        guarded("get_max_packet_size", 0, || {
            i32::try_from(self.engine.borrow().max_message()).unwrap_or(i32::MAX)
        })
    }

    fn poll(&mut self) -> Error {
        // The connection's poll does the I/O for all its channels.
        if self.poisoned { Error::FAILED } else { Error::OK }
    }

    fn close(&mut self) {
        self.with_engine("close", (), |c, key| c.close_channel(key));
    }

    fn set_write_mode(&mut self, write_mode: WriteMode) {
        self.write_mode = write_mode;
    }

    fn get_write_mode(&self) -> WriteMode {
        self.write_mode
    }

    fn was_string_packet(&self) -> bool {
        self.current_was_string
    }

    fn get_ready_state(&self) -> GdChannelState {
        self.get("get_ready_state", GdChannelState::CLOSED, |c| match c.state {
            ChannelState::Connecting => GdChannelState::CONNECTING,
            ChannelState::Open => GdChannelState::OPEN,
            ChannelState::Closed => GdChannelState::CLOSED,
        })
    }

    fn get_label(&self) -> GString {
        self.get("get_label", GString::new(), |c| GString::from(c.spec.label.as_str()))
    }

    fn is_ordered(&self) -> bool {
        self.get("is_ordered", false, |c| c.spec.ordered)
    }

    fn get_id(&self) -> i32 {
        // Godot reports -1 for a channel whose stream id is not known yet.
        self.get("get_id", -1, |c| c.stream.map_or(-1, i32::from))
    }

    fn get_max_packet_life_time(&self) -> i32 {
        // 65535 is Godot's "not set", as webrtc-native reports it.
        self.get("get_max_packet_life_time", 65535, |c| c.spec.max_packet_lifetime.map_or(65535, i32::from))
    }

    fn get_max_retransmits(&self) -> i32 {
        self.get("get_max_retransmits", 65535, |c| c.spec.max_retransmits.map_or(65535, i32::from))
    }

    fn get_protocol(&self) -> GString {
        self.get("get_protocol", GString::new(), |c| GString::from(c.spec.protocol.as_str()))
    }

    fn is_negotiated(&self) -> bool {
        self.get("is_negotiated", false, |c| c.spec.negotiated.is_some())
    }

    fn get_buffered_amount(&self) -> i32 {
        self.get("get_buffered_amount", 0, |c| i32::try_from(c.buffered()).unwrap_or(i32::MAX))
    }
}
