// SPDX-License-Identifier: BSD-3-Clause
// Fuzz target: the byte stream a peer writes to a connection. The input goes into one end of a
// socketpair (with two kernel handles on its first byte, so that frames announcing handles get
// some); the other end is read by the real IpmbConnection::readFrames(), and every frame it cuts
// out is decoded the way the controller and the endpoints decode it.

#include "fuzzcommon.h"
#include "ipmbconnection_p.h"
#include "ipmbpayloadcodec_p.h"
#include "ipmbpeertable_p.h"
#include "ipmbselectorcodec_p.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

// What one write to a fresh socketpair takes without blocking (the default buffer is ~200 KiB).
constexpr size_t MaxInput = 64 * 1024;
constexpr int HandlesSent = 2;

int devNull = -1;

// Writes the input, the handles riding on its first byte, then closes the writing end.
void writeInput(int fd, const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    iovec iov{const_cast<uint8_t *>(data), size};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * HandlesSent)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * HandlesSent);
    const int fds[HandlesSent] = {devNull, devNull};
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    FUZZ_CHECK(n == ssize_t(size), "sendmsg() to a fresh socketpair did not take the input");
}

void decodeMessage(const IpmbConnection::Frame &frame)
{
    const IpmbProtocol::Header &h = frame.header;
    FUZZ_CHECK(frame.body.size() == qsizetype(h.bodyLength), "a frame's body is not bodyLength bytes");
    FUZZ_CHECK(frame.handles.size() == h.handleCount, "a frame came without its handles");
    QString why;
    const IpmbProtocol::MessageSections sections = IpmbProtocol::messageSections(h, frame.body);
    IpmbProtocol::parseSenderBlock(sections.sender, &why);
    IpmbProtocol::callOf(h, sections);
    IpmbSelectorCodec::decodeSelector(sections.selector, &why);
    const QByteArrayView attachments = sections.attachments;
    const QByteArrayView payload = sections.payload;
    if (attachments.contains(char(IpmbProtocol::AttachmentKind::PayloadRegion))) {
        IpmbProtocol::parseRegionPayloadLength(payload, &why);
        return;
    }
    IpmbPayloadCodec::rawByteArrayOffset(payload);
    IpmbPayloadCodec::decode(payload);
}

IpmbConnection::Action decode(const IpmbConnection::Frame &frame)
{
    QString why;
    switch (frame.header.type) {
    case IpmbProtocol::FrameType::Hello: IpmbProtocol::parseHello(frame.body, &why); break;
    case IpmbProtocol::FrameType::Welcome: IpmbProtocol::parseWelcome(frame.body, &why); break;
    case IpmbProtocol::FrameType::Refuse: IpmbProtocol::parseRefuse(frame.body, &why); break;
    case IpmbProtocol::FrameType::Dropped: IpmbProtocol::parseDropped(frame.body, &why); break;
    case IpmbProtocol::FrameType::Message: decodeMessage(frame); break;
    case IpmbProtocol::FrameType::Watch: IpmbProtocol::parseWatch(frame.body, &why); break;
    case IpmbProtocol::FrameType::Undeliverable: IpmbProtocol::parseUndeliverable(frame.body, &why); break;
    case IpmbProtocol::FrameType::Introduce:
        // Both directions' bodies: what a controller and what an endpoint reads.
        IpmbProtocol::parseIntroduce(frame.body, &why);
        IpmbProtocol::parseIntroduced(frame.body, &why);
        break;
    case IpmbProtocol::FrameType::Channel:
        IpmbProtocol::parseChannel(frame.header, frame.body, &why);
        if (!frame.handles.isEmpty())
            IpmbPlatform::isLocalStreamSocket(frame.handles.at(0).handle());
        break;
    case IpmbProtocol::FrameType::Close: break;
    case IpmbProtocol::FrameType::Monitoring: IpmbProtocol::parseMonitoring(frame.body, &why); break;
    case IpmbProtocol::FrameType::Observed:
        // What a monitor (and, for the selector, the controller) reads of it.
        if (const std::optional<IpmbProtocol::ObservedSections> observed =
                    IpmbProtocol::parseObserved(frame.header, frame.body, &why)) {
            IpmbProtocol::parseSenderBlock(observed->sender, &why);
            IpmbSelectorCodec::decodeSelector(observed->selector, &why);
            IpmbPayloadCodec::typeNameOf(observed->payloadPrefix, &why);
            if (quint64(observed->payloadPrefix.size()) == observed->observation.payloadLength)
                IpmbPayloadCodec::decode(observed->payloadPrefix);
        }
        break;
    case IpmbProtocol::FrameType::Peer:
        // What a watching endpoint does with it: its list (kept across inputs) takes any sequence.
        if (const std::optional<IpmbProtocol::Peer> peer = IpmbProtocol::parsePeer(frame.body, &why)) {
            static IpmbPeerTable table;
            static qint64 now = 0;
            QList<IpmbPeerTable::Change> changes;
            table.apply(IpmbPeerTable::noteFrom(*peer, frame.body.size()), ++now, 100, &changes);
            if (table.size() > 1000)
                table.clear();
        }
        break;
    }
    return IpmbConnection::Action::Consumed;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    fuzzInitialize();
    devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    FUZZ_CHECK(devNull >= 0, "cannot open /dev/null");
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MaxInput)
        return 0;
    int fds[2];
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0, "socketpair()");
    writeInput(fds[0], data, size);
    ::close(fds[0]);

    IpmbConnection connection(fds[1]); // closes it
    // Small budgets: readFrames() returns often, as it does in a controller serving many peers.
    for (int round = 0; round < 1000; ++round) {
        if (connection.readFrames(decode, 16 * 1024, 3) != IpmbConnection::ReadStatus::Ok)
            return 0;
    }
    FUZZ_CHECK(false, "readFrames() keeps returning Ok on a closed socket");
    return 0;
}
