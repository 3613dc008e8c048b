// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBMESSAGE_P_H
#define IPMBMESSAGE_P_H

//
//  W A R N I N G
//  -------------
//
// This file is not part of the IpmbQt API. It exists purely as an
// implementation detail. This header file may change from version to
// version without notice, or even be removed.
//
// We mean it.
//

#include "ipmbmessage.h"

#include <atomic>
#include <memory>

struct IpmbObservation;

class IpmbMessageData : public QSharedData
{
public:
    IpmbMessageData() = default;
    // Constructed rather than assigned: each default member would cost a reference count update
    // on a shared empty instance, and a receiver builds one of these per message.
    IpmbMessageData(const IpmbSelector &selector, const QVariant &payload) : selector(selector), payload(payload) { }
    IpmbMessageData(const IpmbSelector &selector, const IpmbLabel &senderLabel)
        : selector(selector), senderLabel(senderLabel) { }

    static IpmbMessageData *get(IpmbMessage &message) { return message.d.data(); }
    static const IpmbMessageData *get(const IpmbMessage &message) { return message.d.constData(); }
    // A received message, with its selector and sender label already set.
    static IpmbMessage received(const IpmbSelector &selector, const IpmbLabel &senderLabel)
    {
        return IpmbMessage(new IpmbMessageData(selector, senderLabel));
    }

    IpmbSelector selector;
    QVariant payload;
    QList<IpmbNativeHandle> handles;
    QList<IpmbMemoryRegion> regions;
    IpmbMessage::PayloadStatus payloadStatus = IpmbMessage::PayloadOk;
    QByteArray payloadTypeName;
    QString payloadErrorString;
    QByteArray encodedPayload;  // kept instead of decoded, for the tools (ipmbtoolsupport_p.h)
    std::shared_ptr<const IpmbObservation> observation;  // a monitor's copy: how the message went
    qint64 senderPid = -1;
    qint64 senderUid = -1;
    IpmbLabel senderLabel;
    quint32 senderId = 0;

    // A received request: its id, and whether reply() was called (shared by every copy).
    void markRequest(quint64 id)
    {
        requestId = id;
        replied = std::make_shared<std::atomic<bool>>(false);
    }
    bool isRequest() const { return bool(replied); }
    quint64 requestId = 0;
    bool requestOnChannel = false;  // it came on a direct channel: the reply goes back on it
    std::shared_ptr<std::atomic<bool>> replied;
};

#endif // IPMBMESSAGE_P_H
