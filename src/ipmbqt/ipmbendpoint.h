// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBENDPOINT_H
#define IPMBENDPOINT_H

#include "ipmbqtglobal.h"
#include "ipmblabel.h"
#include "ipmblabelop.h"
#include "ipmbmessage.h"
#include "ipmbpeer.h"
#include "ipmbselector.h"

#include <QtCore/qexception.h>
#include <QtCore/qfuture.h>
#include <QtCore/qobject.h>
#include <QtCore/qvariant.h>

#include <memory>
#include <optional>

class IpmbEndpointPrivate;

class IPMBQT_EXPORT IpmbEndpoint : public QObject
{
    Q_OBJECT
    Q_PROPERTY(QString identifier READ identifier WRITE setIdentifier NOTIFY identifierChanged)
    Q_PROPERTY(IpmbLabel label READ label WRITE setLabel NOTIFY labelChanged)
    Q_PROPERTY(QByteArray token READ token WRITE setToken NOTIFY tokenChanged)
    Q_PROPERTY(int joinTimeout READ joinTimeout WRITE setJoinTimeout NOTIFY joinTimeoutChanged)
    Q_PROPERTY(State state READ state NOTIFY stateChanged)
    Q_PROPERTY(bool controller READ isController NOTIFY controllerChanged)
    Q_PROPERTY(quint32 endpointId READ endpointId NOTIFY stateChanged)
    Q_PROPERTY(bool watchingPeers READ isWatchingPeers WRITE setWatchingPeers NOTIFY watchingPeersChanged)
    // errorOccurred() is also emitted, with NoError, when clearError() resets a set error.
    Q_PROPERTY(Error error READ error NOTIFY errorOccurred)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorOccurred)

public:
    enum State { UnjoinedState, JoiningState, JoinedState, ReconnectingState };
    Q_ENUM(State)

    enum Error {
        NoError,
        TimeoutError,
        DisconnectedError,
        VersionMismatchError,
        TokenMismatchError,
        PermissionError,
        PayloadTooLargeError,
        QueueFullError,
        InvalidArgumentError,
        ProtocolError,
        ResourceError,
        UnknownError,
        NoRouteError,
        PeerLeftError
    };
    Q_ENUM(Error)

    explicit IpmbEndpoint(QObject *parent = nullptr);
    ~IpmbEndpoint() override;

    QString identifier() const;
    void setIdentifier(const QString &identifier);
    IpmbLabel label() const;
    void setLabel(const IpmbLabel &label);
    QByteArray token() const;
    void setToken(const QByteArray &token);

    // How long join() may take before it fails with TimeoutError, and how long a lost controller
    // may take to be replaced before the endpoint gives up (default 10 s).
    int joinTimeout() const;
    void setJoinTimeout(int msecs);

    State state() const;
    bool isJoined() const { return state() == JoinedState; }
    bool isController() const;
    quint32 endpointId() const;

    Error error() const;
    QString errorString() const;
    void clearError();

    bool waitForJoined(int msecs = 10000);

    Q_INVOKABLE bool send(const IpmbSelector &selector, const QVariant &payload);
    Q_INVOKABLE bool send(const IpmbMessage &message);
    // Sends a tracked message: *messageId is its id, and undeliverable() says if it reaches nobody.
    bool send(const IpmbMessage &message, quint64 *messageId);

    // Request/reply: one unicast that expects one reply (see IpmbRequestError for the failures).
    QFuture<IpmbMessage> request(const IpmbSelector &selector, const QVariant &payload, int timeoutMsecs = 30000);
    QFuture<IpmbMessage> request(const IpmbMessage &message, int timeoutMsecs = 30000);
    Q_INVOKABLE bool reply(const IpmbMessage &request, const QVariant &payload);
    bool reply(const IpmbMessage &request, const IpmbMessage &reply);

    // Blocking receive for worker threads; see the class documentation for how it shares
    // messages with messageReceived().
    std::optional<IpmbMessage> receive(int msecs);

    qint64 bytesToWrite() const;
    bool waitForBytesWritten(int msecs = 30000);

    // Messages for this endpoint that the controller dropped because its queue was full
    // (the sum of all messagesDropped() counts since join()).
    quint64 droppedMessageCount() const;

    // Presence: who else is on the bus (opt-in, see watchingPeers).
    bool isWatchingPeers() const;
    void setWatchingPeers(bool watching);
    Q_INVOKABLE QList<IpmbPeer> peers() const;
    QList<IpmbPeer> peers(const IpmbLabelOp &filter) const;
    bool waitForPeer(const IpmbLabelOp &filter, int msecs = 30000);
    QFuture<IpmbPeer> whenPeer(const IpmbLabelOp &filter);

public Q_SLOTS:
    void join();
    void leave();

Q_SIGNALS:
    void identifierChanged(const QString &identifier);
    void labelChanged(const IpmbLabel &label);
    void tokenChanged(const QByteArray &token);
    void joinTimeoutChanged(int msecs);
    void stateChanged(IpmbEndpoint::State state);
    void joined();
    void controllerChanged(bool isController);
    void messageReceived(const IpmbMessage &message);
    void bytesWritten(qint64 bytes);
    void messagesDropped(quint64 count);
    void watchingPeersChanged(bool watching);
    void peerJoined(const IpmbPeer &peer);
    void peerLeft(const IpmbPeer &peer);
    void undeliverable(quint64 messageId, IpmbEndpoint::Error reason);
    void errorOccurred(IpmbEndpoint::Error error);

protected:
    void connectNotify(const QMetaMethod &signal) override;
    void disconnectNotify(const QMetaMethod &signal) override;

private:
    Q_DISABLE_COPY_MOVE(IpmbEndpoint)
    Q_DECLARE_PRIVATE(IpmbEndpoint)
    std::unique_ptr<IpmbEndpointPrivate> d_ptr;
};

// What a request's future fails with (QFuture::onFailed()).
class IPMBQT_EXPORT IpmbRequestError : public QException
{
public:
    IpmbRequestError(IpmbEndpoint::Error error, const QString &errorString);

    IpmbEndpoint::Error error() const;
    QString errorString() const;

    const char *what() const noexcept override;
    void raise() const override;
    IpmbRequestError *clone() const override;

private:
    IpmbEndpoint::Error m_error;
    QString m_errorString;
    QByteArray m_what;
};

#endif // IPMBENDPOINT_H
