// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBMESSAGE_H
#define IPMBMESSAGE_H

#include "ipmbqtglobal.h"
#include "ipmblabel.h"
#include "ipmbmemoryregion.h"
#include "ipmbnativehandle.h"
#include "ipmbselector.h"

#include <QtCore/qmetatype.h>
#include <QtCore/qobjectdefs.h>
#include <QtCore/qshareddata.h>
#include <QtCore/qvariant.h>

class IpmbMessageData;
QT_BEGIN_NAMESPACE
class QDebug;
QT_END_NAMESPACE

class IPMBQT_EXPORT IpmbMessage
{
    Q_GADGET
    Q_PROPERTY(IpmbSelector selector READ selector CONSTANT)
    Q_PROPERTY(QVariant payload READ payload CONSTANT)
    Q_PROPERTY(PayloadStatus payloadStatus READ payloadStatus CONSTANT)
    // Text for QML (a QByteArray would arrive there as an ArrayBuffer).
    Q_PROPERTY(QString payloadTypeName READ payloadTypeNameText CONSTANT)
    Q_PROPERTY(qint64 senderPid READ senderPid CONSTANT)
    Q_PROPERTY(qint64 senderUid READ senderUid CONSTANT)
    Q_PROPERTY(IpmbLabel senderLabel READ senderLabel CONSTANT)
    Q_PROPERTY(quint32 senderId READ senderId CONSTANT)
    Q_PROPERTY(bool request READ isRequest CONSTANT)
    Q_PROPERTY(QString payloadErrorString READ payloadErrorString CONSTANT)
    Q_PROPERTY(qsizetype handleCount READ handleCount CONSTANT)
    Q_PROPERTY(qsizetype regionCount READ regionCount CONSTANT)

public:
    enum PayloadStatus { PayloadOk, PayloadUnknownType, PayloadMalformed };
    Q_ENUM(PayloadStatus)

    IpmbMessage();
    IpmbMessage(const IpmbSelector &selector, const QVariant &payload);
    IpmbMessage(const IpmbMessage &other);
    IpmbMessage(IpmbMessage &&other) noexcept;
    IpmbMessage &operator=(const IpmbMessage &other);
    IpmbMessage &operator=(IpmbMessage &&other) noexcept;
    ~IpmbMessage();
    void swap(IpmbMessage &other) noexcept { d.swap(other.d); }

    IpmbSelector selector() const;
    void setSelector(const IpmbSelector &selector);
    QVariant payload() const;
    void setPayload(const QVariant &payload);

    // Kernel handles that travel with the message (at most 64); the receiver gets its own.
    QList<IpmbNativeHandle> handles() const;
    void setHandles(const QList<IpmbNativeHandle> &handles);
    void addHandle(const IpmbNativeHandle &handle);
    qsizetype handleCount() const;

    // Shared-memory regions that travel with the message without a copy: the receiver maps the
    // same memory. Handles and regions together: at most 64.
    QList<IpmbMemoryRegion> regions() const;
    void setRegions(const QList<IpmbMemoryRegion> &regions);
    void addRegion(const IpmbMemoryRegion &region);
    qsizetype regionCount() const;

    // Received messages only: whether the payload could be decoded here, and the type it carried.
    PayloadStatus payloadStatus() const;
    QByteArray payloadTypeName() const;
    QString payloadErrorString() const;

    // Received messages only: who sent it, as seen by the controller (not claimed by the sender).
    qint64 senderPid() const;
    qint64 senderUid() const;
    IpmbLabel senderLabel() const;
    quint32 senderId() const;
    // A request (IpmbEndpoint::request()) that expects IpmbEndpoint::reply().
    bool isRequest() const;

    friend IPMBQT_EXPORT bool operator==(const IpmbMessage &lhs, const IpmbMessage &rhs);
    friend bool operator!=(const IpmbMessage &lhs, const IpmbMessage &rhs) { return !(lhs == rhs); }

private:
    friend class IpmbMessageData;
    QString payloadTypeNameText() const { return QString::fromLatin1(payloadTypeName()); }
    explicit IpmbMessage(IpmbMessageData *data);
    QSharedDataPointer<IpmbMessageData> d;
};

Q_DECLARE_SHARED(IpmbMessage)

#ifndef QT_NO_DEBUG_STREAM
IPMBQT_EXPORT QDebug operator<<(QDebug debug, const IpmbMessage &message);
#endif

Q_DECLARE_METATYPE(IpmbMessage)

#endif // IPMBMESSAGE_H
