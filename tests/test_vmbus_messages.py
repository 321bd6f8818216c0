"""core/vmbus/messages.py: every wire format round-trips, has the size of its C struct, and refuses
bad bytes with MessageError only (hypothesis feeds the parsers arbitrary bytes)."""

from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperlab.core.vmbus import messages as m
from hyperlab.core.vmbus.messages import GpaRange, MessageError


def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, (1 << 64) - 1)
guids = st.uuids()

GPADL_18 = m.GpadlHeader(1, 0x1000, (GpaRange(18 * 4096, 0, tuple(range(0x200, 0x212))),))

EXAMPLES: list[tuple[m.ChannelMessage, int]] = [
    (m.InitiateContact(), 40),
    (m.VersionResponse(1, 0, 1), 16),
    (m.RequestOffers(), 8),
    (m.OfferChannel(m.HV_SCSI_GUID, uuid.UUID(int=1), 1, 0x2001, user_def=b"abc", monitor_allocated=1), 196),
    (m.AllOffersDelivered(), 8),
    (GPADL_18, 20 + 8 + 18 * 8),
    (m.GpadlCreated(1, 0x1000, 0), 20),
    (m.OpenChannel(1, 7, 0x1000, 9, userdata=b"u" * 120), 148),
    (m.OpenChannelResult(1, 7, 0), 20),
    (m.CloseChannel(1), 12),
    (m.Unload(), 8),
    (m.UnloadResponse(), 8),
    (m.RescindChannelOffer(3), 12),
    (m.GpadlTeardown(1, 0x1000), 16),
    (m.GpadlTorndown(0x1000), 12),
]


# ==================================================================================================
# Channel management messages
# ==================================================================================================
@pytest.mark.parametrize(("msg", "size"), EXAMPLES, ids=[type(msg).__name__ for msg, _ in EXAMPLES])
def test_channel_message_round_trip_and_size(msg: m.ChannelMessage, size: int) -> None:
    data = msg.pack()
    assert len(data) == size
    assert struct.unpack_from("<II", data) == (msg.msgtype, 0)
    assert m.parse_channel_message(data) == msg
    assert type(msg).unpack(data) == msg
    assert m.parse_channel_message(data + bytes(240 - size)) == msg  # a slot's unused bytes are ignored
    with pytest.raises(MessageError):
        m.parse_channel_message(data[: size - 1] if size > 8 else data[:7])


def test_every_message_in_the_spec_is_parsed() -> None:
    spec = {1, 3, 4, 5, 6, 7, 8, 10, 14, 15, 16, 17}
    assert spec <= set(m.CHANNEL_MESSAGES)
    assert {type(msg).msgtype for msg, _ in EXAMPLES} == set(m.CHANNEL_MESSAGES)


def test_offer_channel_layout() -> None:
    """The offer as a guest's C struct sees it: GUIDs mixed-endian, then the fields at their offsets."""
    offer = m.OfferChannel(
        m.HV_SCSI_GUID, uuid.UUID("00000001-0002-0003-0405-060708090a0b"), child_relid=1, connection_id=0x2001,
        chn_flags=0x11, mmio_megabytes=2, sub_channel_index=5, monitorid=9, is_dedicated_interrupt=1,
    )
    data = offer.pack()
    assert data[8:14] == bytes.fromhex("d96361baa104")  # ba6163d9-04a1 little-endian
    assert data[16:24] == bytes.fromhex("b60572e2ffb1dc7f")  # last 8 bytes as written
    assert data[24:40] == bytes.fromhex("0100000002000300" "0405060708090a0b")
    assert struct.unpack_from("<QQHH", data, 40) == (0, 0, 0x11, 2)
    assert struct.unpack_from("<HHIBBHI", data, 8 + 172) == (5, 0, 1, 9, 0, 1, 0x2001)
    assert m.guid_from_bytes(data[8:24]) == m.HV_SCSI_GUID
    assert m.guid_to_bytes("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f") == data[8:24]
    with pytest.raises(MessageError):
        m.guid_from_bytes(b"short")


def test_offer_one_bit_fields_and_user_def_size() -> None:
    with pytest.raises(MessageError):
        m.OfferChannel(m.HV_TS_GUID, m.HV_TS_GUID, 5, 0x2005, monitor_allocated=2).pack()
    with pytest.raises(MessageError):
        m.OfferChannel(m.HV_TS_GUID, m.HV_TS_GUID, 5, 0x2005, user_def=bytes(121))
    # Reserved bits set by a sender are ignored, as Linux's bit-fields ignore them.
    data = bytearray(m.OfferChannel(m.HV_TS_GUID, m.HV_TS_GUID, 5, 0x2005).pack())
    data[8 + 181] = 0xFE  # monitor_allocated byte: bit 0 clear, reserved bits set
    assert m.OfferChannel.unpack(bytes(data)).monitor_allocated == 0


def test_gpadl_header_layout_and_limits() -> None:
    data = GPADL_18.pack()
    assert struct.unpack_from("<IIHH", data, 8) == (1, 0x1000, 8 + 18 * 8, 1)
    assert struct.unpack_from("<II", data, 20) == (18 * 4096, 0)
    assert struct.unpack_from("<Q", data, 28)[0] == 0x200
    assert GPADL_18.pfns == tuple(range(0x200, 0x212))
    biggest = m.GpadlHeader(1, 2, (GpaRange(26 * 4096, 0, tuple(range(26))),))
    assert len(biggest.pack()) == 236
    with pytest.raises(MessageError, match="at most 240"):
        m.GpadlHeader(1, 2, (GpaRange(27 * 4096, 0, tuple(range(27))),)).pack()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: struct.pack_into("<H", d, 18, 0), "rangecount 0"),
        (lambda d: struct.pack_into("<H", d, 16, 8 + 19 * 8), "only 152 bytes follow"),  # claims a 19th pfn
        (lambda d: struct.pack_into("<H", d, 16, 8 + 17 * 8), "only 144 bytes are left"),  # 18 pages, 17 slots
        (lambda d: (d.extend(bytes(8)), struct.pack_into("<H", d, 16, 8 + 19 * 8)), "range_buflen 160 but its 1"),
        (lambda d: struct.pack_into("<I", d, 20, 18 * 4096 + 1), "span 19 pages"),  # byte_count spans a 19th page
        (lambda d: struct.pack_into("<I", d, 24, 4096), "byte_offset 4096"),
        (lambda d: struct.pack_into("<I", d, 20, 0), "byte_count is 0"),
        (lambda d: struct.pack_into("<H", d, 18, 2), "gpa_range 1 of 2"),
    ],
)
def test_bad_gpadl_headers(mutate: object, reason: str) -> None:
    data = bytearray(GPADL_18.pack())
    mutate(data)  # type: ignore[operator]
    with pytest.raises(MessageError, match=reason):
        m.parse_channel_message(bytes(data))


def test_unknown_and_wrong_message_types() -> None:
    for msgtype in (0, 9, 13, 18, 0xFFFFFFFF):
        with pytest.raises(MessageError, match="unknown"):
            m.parse_channel_message(struct.pack("<II", msgtype, 0) + bytes(200))
    with pytest.raises(MessageError, match="is not OpenChannel"):
        m.OpenChannel.unpack(m.CloseChannel(1).pack() + bytes(200))
    with pytest.raises(MessageError):
        m.parse_channel_message(b"")


def test_pack_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(MessageError):
        m.CloseChannel(1 << 32).pack()
    with pytest.raises(MessageError):
        m.OpenChannel(1, 2, 3, 9, userdata=bytes(121))


# ==================================================================================================
# SynIC slot and hypercall inputs
# ==================================================================================================
def test_hv_message_slot() -> None:
    payload = m.VersionResponse().pack()
    slot = m.HvMessage(m.HV_MESSAGE_VMBUS, payload, port=0, message_flags=m.HV_MESSAGE_FLAG_PENDING).pack()
    assert len(slot) == m.HV_MESSAGE_SIZE
    assert struct.unpack_from("<IBBHQ", slot) == (1, 16, 1, 0, 0)
    assert slot[16:32] == payload and slot[32:] == bytes(224)
    back = m.HvMessage.unpack(slot)
    assert back.payload == payload and back.msg_pending
    with pytest.raises(MessageError, match="exceeds 240"):
        m.HvMessage.unpack(struct.pack("<IBBHQ", 1, 241, 0, 0, 0) + bytes(240))
    with pytest.raises(MessageError):
        m.HvMessage(1, bytes(241))


def test_post_message_input() -> None:
    msg = m.HvInputPostMessage(m.VMBUS_MESSAGE_CONNECTION_ID, m.RequestOffers().pack())
    data = msg.pack()
    assert len(data) == 256
    assert struct.unpack_from("<IIII", data) == (1, 0, 1, 8)
    assert m.HvInputPostMessage.unpack(data) == msg
    assert m.HvInputPostMessage.unpack(data[:24]) == msg  # only payload_size bytes are needed
    with pytest.raises(MessageError, match="exceeds 240"):
        m.HvInputPostMessage.unpack(struct.pack("<IIII", 1, 0, 1, 241) + bytes(241))
    with pytest.raises(MessageError, match="only 7 bytes"):
        m.HvInputPostMessage.unpack(data[:23])


def test_signal_event_fast_input() -> None:
    sig = m.HvInputSignalEvent(0x2001)
    assert sig.to_register() == 0x2001
    assert m.HvInputSignalEvent.from_register(0x2001 | (3 << 32)) == m.HvInputSignalEvent(0x2001, 3)
    assert m.HvInputSignalEvent.unpack(sig.pack()) == sig
    with pytest.raises(MessageError, match="reserved"):
        m.HvInputSignalEvent.from_register(1 << 48)


def test_hypercall_control_and_result() -> None:
    assert m.hypercall_control(m.HVCALL_SIGNAL_EVENT, fast=True) == 0x1005D
    assert m.hypercall_control(m.HVCALL_SET_VP_REGISTERS, rep_count=3) == 0x0000_0003_0000_0051
    assert m.split_hypercall_result(m.hypercall_result(m.HV_STATUS_INVALID_PARAMETER, 2)) == (5, 2)
    with pytest.raises(MessageError):
        m.hypercall_control(0x10000)


def test_set_and_get_vp_registers_inputs() -> None:
    simp = m.HvRegisterAssoc(m.HV_REGISTER_SIMP, 0x5000 | 1)
    sint2 = m.HvRegisterAssoc(m.HV_REGISTER_SINT0 + m.VMBUS_MESSAGE_SINT, m.HYPERLAB_VMBUS_VECTOR)
    inp = m.HvSetVpRegistersInput((simp, sint2))
    data = inp.pack()
    assert len(data) == 16 + 2 * 32
    assert struct.unpack_from("<QIB", data) == (m.HV_PARTITION_ID_SELF, m.HV_VP_INDEX_SELF, 0)
    assert struct.unpack_from("<IIQQQ", data, 16) == (0xA0013, 0, 0, 0x5001, 0)
    assert m.HvSetVpRegistersInput.unpack(data + bytes(100), 2) == inp
    with pytest.raises(MessageError):
        m.HvSetVpRegistersInput.unpack(data, 3)
    get = m.HvGetVpRegistersInput((m.HV_REGISTER_SCONTROL, m.HV_REGISTER_SIEFP))
    assert len(get.pack()) == 24 and m.HvGetVpRegistersInput.unpack(get.pack(), 2) == get
    with pytest.raises(MessageError):
        m.HvGetVpRegistersInput.unpack(get.pack(), 3)
    assert m.pack_vp_register_values([(1, 2), (3, 4)]) == struct.pack("<QQQQ", 1, 2, 3, 4)


# ==================================================================================================
# Storage
# ==================================================================================================
def test_vmscsi_request_is_36_bytes_and_read10_cdb() -> None:
    srb = m.VmscsiRequest.read10(lba=0x01020304, blocks=0x0080)
    data = srb.pack()
    assert len(data) == m.VMSCSI_REQUEST_SIZE == 36
    assert struct.unpack_from("<HBBBBBBBBBBI", data) == (36, 0, 0, 0, 0, 0, 0, 10, 0, m.READ_TYPE, 0, 128 * 512)
    assert data[16:26] == bytes([0x28, 0, 1, 2, 3, 4, 0, 0x00, 0x80, 0])
    assert data[26:36] == bytes(10)
    assert m.VmscsiRequest.unpack(data) == srb
    assert m.VmscsiRequest.unpack(data[:32]) == srb  # the union's last 4 bytes may be missing
    assert srb.rw10() == m.Rw10(m.READ_10, 0x01020304, 128)
    w = m.VmscsiRequest.write10(7, 1)
    assert w.data_in == m.WRITE_TYPE and w.rw10() == m.Rw10(m.WRITE_10, 7, 1)
    assert m.write10_cdb(7, 1)[0] == 0x2A


def test_cdb_helpers_refuse() -> None:
    with pytest.raises(MessageError):
        m.read10_cdb(1 << 32, 1)
    with pytest.raises(MessageError):
        m.read10_cdb(0, 1 << 16)
    with pytest.raises(MessageError, match="not READ"):
        m.parse_rw10_cdb(bytes([0x12]) + bytes(9))  # INQUIRY
    with pytest.raises(MessageError):
        m.parse_rw10_cdb(bytes([0x28, 0, 0]))
    with pytest.raises(MessageError):
        m.VmscsiRequest(cdb=bytes(17))


@pytest.mark.parametrize(("offset", "value", "reason"), [(8, 17, "cdb_length"), (9, 21, "sense"), (10, 3, "data_in")])
def test_vmscsi_request_bad_values(offset: int, value: int, reason: str) -> None:
    data = bytearray(m.VmscsiRequest.read10(0, 1).pack())
    data[offset] = value
    with pytest.raises(MessageError, match=reason):
        m.VmscsiRequest.unpack(bytes(data))


def test_vstor_packets_of_the_init_sequence_and_io() -> None:
    begin = m.VstorPacket(m.VSTOR_OPERATION_BEGIN_INITIALIZATION, m.REQUEST_COMPLETION_FLAG)
    assert begin.pack() == struct.pack("<III", 7, 1, 0)
    version = m.VstorPacket.query_protocol_version()
    assert version.pack()[12:14] == b"\x02\x06"
    assert m.VstorPacket.unpack(version.pack()).major_minor() == 0x0602
    props = m.VstorPacket.properties_completion(sector_count=131072)
    assert len(props.pack()) == 20 and m.VstorPacket.unpack(props.pack()).sector_count() == 131072
    io = m.VstorPacket.execute_srb(m.VmscsiRequest.write10(100, 8))
    data = io.pack()
    assert len(data) == 12 + 36
    back = m.VstorPacket.unpack(data + bytes(4))  # padded to 8 in the ring
    assert back.operation == m.VSTOR_OPERATION_EXECUTE_SRB and back.srb().rw10().lba == 100
    done = m.VstorPacket.complete_io(
        0, m.VmscsiRequest(srb_status=m.SRB_STATUS_ERROR, scsi_status=m.SAM_STAT_CHECK_CONDITION).pack()
    )
    assert m.VstorPacket.unpack(done.pack()).srb().scsi_status == 2
    for bad in (0, 14, 0xFFFFFFFF):
        with pytest.raises(MessageError, match="unknown vstor operation"):
            m.VstorPacket.unpack(struct.pack("<III", bad, 0, 0))
    with pytest.raises(MessageError):
        m.VstorPacket(m.VSTOR_OPERATION_QUERY_PROPERTIES).sector_count()
    with pytest.raises(MessageError):
        m.VstorPacket(m.VSTOR_OPERATION_EXECUTE_SRB, body=bytes(31)).srb()


# ==================================================================================================
# Integration services
# ==================================================================================================
def test_ic_heartbeat_request_and_answer() -> None:
    req = m.IcMessage(m.ICMSGTYPE_HEARTBEAT, m.HeartbeatMsgData(41).pack(), ictransaction_id=3)
    data = req.pack()
    assert len(data) == 8 + 20 + 40
    assert struct.unpack_from("<II", data) == (0, 20 + 40)
    assert struct.unpack_from("<HHHHHHIBB", data, 8) == (1, 0, 1, 3, 0, 40, 0, 3, 3)
    back = m.IcMessage.unpack(data + bytes(4))  # ring padding after icmsgsize is ignored
    assert back == req
    beat = back.parse_body()
    assert isinstance(beat, m.HeartbeatMsgData) and beat.seq_num == 41
    answer = back.response(m.HeartbeatMsgData(beat.seq_num + 1).pack())
    assert answer.icflags == m.ICMSGHDRFLAG_TRANSACTION | m.ICMSGHDRFLAG_RESPONSE
    assert m.IcMessage.unpack(answer.pack()).parse_body() == m.HeartbeatMsgData(42)


def test_ic_shutdown_and_timesync_bodies() -> None:
    shutdown = m.ShutdownMsgData(0, 30, m.SHUTDOWN_FLAG_REBOOT | m.SHUTDOWN_FLAG_FORCED, b"bye")
    data = shutdown.pack()
    assert len(data) == 76 and data[12:15] == b"bye" and data[15:] == bytes(61)
    assert m.ShutdownMsgData.unpack(data) == shutdown and shutdown.reboot
    with pytest.raises(MessageError):
        m.ShutdownMsgData(display_message=bytes(65))
    ts = m.IcTimesyncData(parenttime=133_000_000_000_000_000, flags=m.ICTIMESYNCFLAG_SYNC)
    assert len(ts.pack()) == 25
    msg = m.IcMessage(m.ICMSGTYPE_TIMESYNC, ts.pack())
    assert m.IcMessage.unpack(msg.pack()).parse_body() == ts


def test_ic_refusals() -> None:
    with pytest.raises(MessageError, match="icmsgsize 40"):
        m.IcMessage.unpack(m.IcMessage(m.ICMSGTYPE_HEARTBEAT, bytes(40)).pack()[:60])
    with pytest.raises(MessageError, match="no body"):
        m.IcMessage(m.ICMSGTYPE_NEGOTIATE).parse_body()
    with pytest.raises(MessageError):
        m.IcMessage(m.ICMSGTYPE_HEARTBEAT, bytes(39)).parse_body()
    with pytest.raises(MessageError):
        m.IcMessage.unpack(bytes(27))


# ==================================================================================================
# Property-based: round trips of generated messages
# ==================================================================================================
def _gpa_range(byte_offset: int, npages: int, within: int, pfns: list[int]) -> GpaRange:
    low = max(1, (npages - 1) * 4096 - byte_offset + 1)
    high = npages * 4096 - byte_offset
    return GpaRange(low + within % (high - low + 1), byte_offset, tuple(pfns[:npages]))


gpa_ranges = st.builds(
    _gpa_range,
    st.integers(0, 4095),
    st.integers(1, 8),
    st.integers(0, 4095),
    st.lists(st.integers(0, (1 << 64) - 1), min_size=8, max_size=8),
)

channel_messages = st.one_of(
    st.builds(m.InitiateContact, u32, u32, u64, u64, u64),
    st.builds(m.VersionResponse, u8, u8, u32),
    st.builds(m.RequestOffers),
    st.builds(m.AllOffersDelivered),
    st.builds(m.Unload),
    st.builds(m.UnloadResponse),
    st.builds(
        m.OfferChannel, guids, guids, u32, u32, u16, u16, st.binary(max_size=120).map(lambda b: b.ljust(120, b"\0")),
        u16, u8, st.integers(0, 1), st.integers(0, 1),
    ),
    st.builds(m.RescindChannelOffer, u32),
    st.builds(m.GpadlHeader, u32, u32, st.lists(gpa_ranges, min_size=1, max_size=3).map(tuple)),
    st.builds(m.GpadlCreated, u32, u32, u32),
    st.builds(m.GpadlTeardown, u32, u32),
    st.builds(m.GpadlTorndown, u32),
    st.builds(m.OpenChannel, u32, u32, u32, u32, u32, st.binary(min_size=120, max_size=120)),
    st.builds(m.OpenChannelResult, u32, u32, u32),
    st.builds(m.CloseChannel, u32),
)


@examples(2000)
@given(msg=channel_messages)
def test_generated_channel_messages_round_trip(msg: m.ChannelMessage) -> None:
    try:
        data = msg.pack()
    except MessageError:
        assert isinstance(msg, m.GpadlHeader)  # only a GPADL can outgrow one message
        return
    assert len(data) <= 240
    assert m.parse_channel_message(data) == msg


@examples(1000)
@given(
    cdb=st.binary(max_size=16).map(lambda b: b.ljust(16, b"\0")),
    fields=st.tuples(st.integers(0, 16), st.integers(0, 2), u32, u8, u8, u8, u8, u8, u8, st.integers(0, 20), u8, u16),
    operation=st.integers(1, 13),
    flags=u32,
    status=u32,
)
def test_generated_vstor_packets_round_trip(
    cdb: bytes, fields: tuple[int, ...], operation: int, flags: int, status: int
) -> None:
    srb = m.VmscsiRequest(cdb, *fields)
    pkt = m.VstorPacket(operation, flags, status, srb.pack())
    back = m.VstorPacket.unpack(pkt.pack())
    assert back == pkt and back.srb() == srb


@examples(1000)
@given(lba=u32, blocks=u16)
def test_rw10_round_trip(lba: int, blocks: int) -> None:
    assert m.parse_rw10_cdb(m.read10_cdb(lba, blocks)) == m.Rw10(m.READ_10, lba, blocks)
    assert m.parse_rw10_cdb(m.write10_cdb(lba, blocks)) == m.Rw10(m.WRITE_10, lba, blocks)


ic_bodies = st.one_of(
    st.builds(m.HeartbeatMsgData, u64),
    st.builds(m.ShutdownMsgData, u32, u32, u32, st.binary(max_size=64).map(lambda b: b.rstrip(b"\0"))),
    st.builds(m.IcTimesyncData, u64, u64, u64, u8),
)
_IC_TYPE = {m.HeartbeatMsgData: 1, m.ShutdownMsgData: 3, m.IcTimesyncData: 4}


@examples(1000)
@given(body=ic_bodies, icflags=u8, tid=u8, status=u32, frame=st.tuples(u16, u16), ver=st.tuples(u16, u16), pipe=u32)
def test_generated_ic_messages_round_trip(
    body: m.HeartbeatMsgData | m.ShutdownMsgData | m.IcTimesyncData,
    icflags: int, tid: int, status: int, frame: tuple[int, int], ver: tuple[int, int], pipe: int,
) -> None:
    msg = m.IcMessage(_IC_TYPE[type(body)], body.pack(), icflags, tid, status, frame, ver, pipe)
    back = m.IcMessage.unpack(msg.pack())
    assert back == msg and back.parse_body() == body


@examples(500)
@given(port=u64, flags=u8, mtype=u32, payload=st.binary(max_size=240), conn=u32)
def test_generated_synic_and_post_message_round_trip(port: int, flags: int, mtype: int, payload: bytes,
                                                     conn: int) -> None:
    assert m.HvMessage.unpack(m.HvMessage(mtype, payload, port, flags).pack()) == m.HvMessage(mtype, payload, port,
                                                                                               flags)
    assert m.HvInputPostMessage.unpack(m.HvInputPostMessage(conn, payload, mtype).pack()) == m.HvInputPostMessage(
        conn, payload, mtype
    )


# ==================================================================================================
# Property-based: hostile bytes get MessageError and nothing else
# ==================================================================================================
def _only_message_error(parse: object, data: bytes) -> object:
    try:
        return parse(data)  # type: ignore[operator]
    except MessageError:
        return None


def _sized_body(msgtype: int) -> st.SearchStrategy[bytes]:
    """A body around the size the message needs: the parser's own checks decide, not the length."""
    need = m.CHANNEL_MESSAGES[msgtype].size() - 8
    return st.binary(min_size=max(0, need - 2), max_size=need + 8).map(lambda b: struct.pack("<II", msgtype, 0) + b)


def _gpadl_bytes(t: tuple[int, int, int, int, int, int, int]) -> bytes:
    """A GPADL_HEADER whose byte_count, byte_offset, pfn count, range_buflen, rangecount are each near right."""
    npages, byte_offset, count_delta, buflen_delta, pfn_delta, rangecount, gpadl = t
    byte_count = max(0, npages * 4096 - byte_offset + count_delta)
    npfn = max(0, min(26, npages + pfn_delta))
    ranges = struct.pack("<II", byte_count, byte_offset) + struct.pack(f"<{npfn}Q", *range(npfn))
    buflen = max(0, min(0xFFFF, len(ranges) + buflen_delta))
    return struct.pack("<IIIIHH", m.CHANNELMSG_GPADL_HEADER, 0, 1, gpadl, buflen, rangecount) + ranges


channel_payloads = st.one_of(
    st.binary(max_size=240),
    st.sampled_from(sorted(m.CHANNEL_MESSAGES)).flatmap(_sized_body),
    st.tuples(
        st.integers(0, 27), st.one_of(st.integers(0, 8), st.integers(0, 5000)), st.sampled_from([0, 0, -1, 1, -4096]),
        st.sampled_from([0, 0, 0, -8, 8, -1]), st.sampled_from([0, 0, 0, -1, 1]), st.sampled_from([1, 1, 1, 0, 2]), u32,
    ).map(_gpadl_bytes),
)


@examples(3000)
@given(data=channel_payloads)
def test_parse_channel_message_on_arbitrary_bytes(data: bytes) -> None:
    msg = _only_message_error(m.parse_channel_message, data)
    if msg is not None:
        assert isinstance(msg, m.ChannelMessage)
        assert m.parse_channel_message(msg.pack()) == msg  # what was accepted is a well-formed message


@examples(1500)
@given(data=st.one_of(st.binary(max_size=80), st.tuples(st.integers(0, 15), st.binary(max_size=60)).map(
    lambda t: struct.pack("<III", t[0], 0, 0) + t[1])))
def test_vstor_unpack_on_arbitrary_bytes(data: bytes) -> None:
    pkt = _only_message_error(m.VstorPacket.unpack, data)
    if isinstance(pkt, m.VstorPacket):
        _only_message_error(lambda _: pkt.major_minor(), b"")
        _only_message_error(lambda _: pkt.sector_count(), b"")
        srb = _only_message_error(lambda _: pkt.srb(), b"")
        if isinstance(srb, m.VmscsiRequest):
            _only_message_error(lambda _: srb.rw10(), b"")


@examples(1500)
@given(data=st.one_of(
    st.binary(max_size=120),
    st.tuples(u32, st.sampled_from([0, 1, 3, 4, 5]), st.integers(0, 90), st.binary(max_size=90)).map(
        lambda t: struct.pack("<IIHHHHHHIBBxx", t[0], 0, 1, 0, t[1], 3, 0, t[2], 0, 0, 0) + t[3]
    ),
))
def test_ic_unpack_on_arbitrary_bytes(data: bytes) -> None:
    msg = _only_message_error(m.IcMessage.unpack, data)
    if isinstance(msg, m.IcMessage):
        _only_message_error(lambda _: msg.parse_body(), b"")


@examples(1000)
@given(data=st.binary(max_size=300), count=st.integers(0, 12))
def test_synic_and_hypercall_inputs_on_arbitrary_bytes(data: bytes, count: int) -> None:
    _only_message_error(m.HvMessage.unpack, data)
    _only_message_error(m.HvInputPostMessage.unpack, data)
    _only_message_error(m.HvInputSignalEvent.unpack, data)
    _only_message_error(lambda d: m.HvSetVpRegistersInput.unpack(d, count), data)
    _only_message_error(lambda d: m.HvGetVpRegistersInput.unpack(d, count), data)
