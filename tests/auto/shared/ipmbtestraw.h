// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBTESTRAW_H
#define IPMBTESTRAW_H

// A raw peer: this test process speaking the wire protocol (doc/protocol.md) to a controller
// through IpmbPlatform, with frames written by hand, for the tests that attack or drive the
// controller below the endpoint's API.

#include "ipmberror_p.h"
#include "ipmblabel.h"
#include "ipmbplatform_p.h"
#include "ipmbprotocol_p.h"
#include "ipmbselector.h"
#include "ipmbselectorcodec_p.h"

#include <QtCore/qbytearray.h>
#include <QtCore/qbytearrayview.h>
#include <QtCore/qdeadlinetimer.h>
#include <QtCore/qlist.h>
#include <QtCore/qstring.h>
#include <QtTest/qtest.h>

namespace IpmbTest {

// The address of `bus` for this user (doc/protocol.md, "Transport").
inline QByteArray busAddressOf(const QString &bus)
{
    QByteArray address;
    IpmbErrorInfo error;
    if (!IpmbPlatform::busAddress(bus, &address, &error))
        qWarning("no address for bus %s: %s", qPrintable(bus), qPrintable(error.message));
    return address;
}

// A connection to the bus's controller that is not an endpoint, for frames written by hand.
inline IpmbPlatform::Socket connectRaw(const QString &bus)
{
    IpmbErrorInfo error;
    IpmbPlatform::Socket socket = IpmbPlatform::InvalidSocket;
    if (IpmbPlatform::connectTo(busAddressOf(bus), &socket, &error) != IpmbPlatform::ConnectStatus::Connected) {
        qWarning("cannot connect to bus %s: %s", qPrintable(bus), qPrintable(error.message));
        return IpmbPlatform::InvalidSocket;
    }
    return socket;
}

// A raw endpoint: connected, Hello sent and Welcome read. InvalidSocket on failure.
inline IpmbPlatform::Socket rawJoin(const QString &bus, const QString &label)
{
    const IpmbPlatform::Socket socket = connectRaw(bus);
    if (socket == IpmbPlatform::InvalidSocket)
        return socket;
    QByteArray hello;
    IpmbProtocol::appendHello(hello, IpmbProtocol::Hello::first(QByteArray(), IpmbLabel{label}));
    const IpmbPlatform::IoSlice slice {hello.constData(), hello.size()};
    IpmbPlatform::write(socket, &slice, 1);
    QByteArray welcome;
    const bool ok = QTest::qWaitFor([&] {
        char buffer[256];
        const IpmbPlatform::IoResult r = IpmbPlatform::read(socket, buffer, sizeof(buffer));
        if (r.status == IpmbPlatform::IoStatus::Ok)
            welcome.append(buffer, r.bytes);
        return welcome.size() >= IpmbProtocol::HeaderSize + 12;
    }, 10000);
    if (!ok) {
        IpmbPlatform::closeSocket(socket);
        return IpmbPlatform::InvalidSocket;
    }
    return socket;
}

// Writes all of `bytes` (and `handles` with the first byte), waiting for room; false if the peer
// closed the connection first.
inline bool writeAll(IpmbPlatform::Socket socket, QByteArrayView bytes, const QList<qintptr> &handles = {})
{
    qsizetype done = 0;
    bool handlesSent = handles.isEmpty();
    QDeadlineTimer deadline(60000);
    while (done < bytes.size() && !deadline.hasExpired()) {
        const IpmbPlatform::IoSlice slice {bytes.data() + done, bytes.size() - done};
        const IpmbPlatform::IoResult r = handlesSent ? IpmbPlatform::write(socket, &slice, 1)
                                                     : IpmbPlatform::write(socket, &slice, 1, handles.constData(),
                                                                           int(handles.size()));
        if (r.status == IpmbPlatform::IoStatus::Ok) {
            done += qsizetype(r.bytes);
            handlesSent = true;
        } else if (r.status == IpmbPlatform::IoStatus::WouldBlock) {
            IpmbPlatform::PollEntry entry {socket, false, true, false, false};
            IpmbPlatform::poll(&entry, 1, 100);
        } else {
            return false;
        }
    }
    return done == bytes.size();
}

// Whether the controller closed `socket` (reading and discarding what it sends until then).
inline bool closedByPeer(IpmbPlatform::Socket socket, int msecs = 10000)
{
    return QTest::qWaitFor([&] {
        char buffer[4096];
        return IpmbPlatform::read(socket, buffer, sizeof(buffer)).status == IpmbPlatform::IoStatus::Closed;
    }, msecs);
}

// A Message frame as an endpoint writes it: `attachments` has one kind byte per handle, and
// `payload` is the payload section.
inline QByteArray messageFrame(const IpmbSelector &selector, QByteArrayView payload, const QByteArray &attachments = {})
{
    QByteArray selectorBytes;
    IpmbSelectorCodec::appendSelector(selectorBytes, selector);
    IpmbProtocol::Header header;
    header.type = IpmbProtocol::FrameType::Message;
    header.selectorLength = quint32(selectorBytes.size());
    header.attachmentLength = quint32(attachments.size());
    header.handleCount = quint16(attachments.size());
    header.bodyLength = quint32(selectorBytes.size() + attachments.size() + payload.size());
    QByteArray frame(IpmbProtocol::HeaderSize, Qt::Uninitialized);
    IpmbProtocol::writeHeader(frame.data(), header);
    frame.reserve(IpmbProtocol::HeaderSize + header.bodyLength);
    frame.append(selectorBytes).append(attachments).append(payload);
    return frame;
}

// The header of a Message frame of `bodyLength` bytes (no selector: the body never comes).
inline QByteArray messageHeader(quint32 bodyLength)
{
    IpmbProtocol::Header header;
    header.type = IpmbProtocol::FrameType::Message;
    header.bodyLength = bodyLength;
    QByteArray bytes(IpmbProtocol::HeaderSize, Qt::Uninitialized);
    IpmbProtocol::writeHeader(bytes.data(), header);
    return bytes;
}

} // namespace IpmbTest

#endif // IPMBTESTRAW_H
