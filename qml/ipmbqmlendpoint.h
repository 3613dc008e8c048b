// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQMLENDPOINT_H
#define IPMBQMLENDPOINT_H

#include "ipmbqtqml_export.h"

#include <IpmbQt/ipmbendpoint.h>

#include <QtCore/qobject.h>
#include <QtQml/qjsvalue.h>
#include <QtCore/qstringlist.h>
#include <QtQml/qqmlparserstatus.h>
#include <QtQml/qqmlregistration.h>

// The QML face of IpmbEndpoint: the same object, with the label as a list of strings and the token
// as text, and a join when the component is complete (active). Everything else is forwarded.
class IPMBQTQML_EXPORT IpmbQmlEndpoint : public QObject, public QQmlParserStatus
{
    Q_OBJECT
    Q_INTERFACES(QQmlParserStatus)
    QML_NAMED_ELEMENT(Endpoint)
    QML_EXTENDED_NAMESPACE(IpmbEndpoint)
    Q_PROPERTY(QString identifier READ identifier WRITE setIdentifier NOTIFY identifierChanged)
    Q_PROPERTY(QStringList label READ label WRITE setLabel NOTIFY labelChanged)
    Q_PROPERTY(QString token READ token WRITE setToken NOTIFY tokenChanged)
    Q_PROPERTY(int joinTimeout READ joinTimeout WRITE setJoinTimeout NOTIFY joinTimeoutChanged)
    Q_PROPERTY(bool active READ isActive WRITE setActive NOTIFY activeChanged)
    Q_PROPERTY(IpmbEndpoint::State state READ state NOTIFY stateChanged)
    Q_PROPERTY(bool controller READ isController NOTIFY controllerChanged)
    Q_PROPERTY(quint32 endpointId READ endpointId NOTIFY stateChanged)
    Q_PROPERTY(IpmbEndpoint::Error error READ error NOTIFY errorOccurred)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorOccurred)
    Q_PROPERTY(bool watchingPeers READ isWatchingPeers WRITE setWatchingPeers NOTIFY watchingPeersChanged)

public:
    explicit IpmbQmlEndpoint(QObject *parent = nullptr);
    ~IpmbQmlEndpoint() override;

    // The endpoint itself, for C++ code that shares it with QML.
    IpmbEndpoint *endpoint() const { return m_endpoint; }

    QString identifier() const { return m_endpoint->identifier(); }
    void setIdentifier(const QString &identifier) { m_endpoint->setIdentifier(identifier); }
    QStringList label() const { return m_endpoint->label().toStringList(); }
    void setLabel(const QStringList &label) { m_endpoint->setLabel(IpmbLabel(label)); }
    QString token() const { return QString::fromUtf8(m_endpoint->token()); }
    void setToken(const QString &token) { m_endpoint->setToken(token.toUtf8()); }
    int joinTimeout() const { return m_endpoint->joinTimeout(); }
    void setJoinTimeout(int msecs) { m_endpoint->setJoinTimeout(msecs); }
    bool isActive() const { return m_active; }
    void setActive(bool active);
    IpmbEndpoint::State state() const { return m_endpoint->state(); }
    bool isController() const { return m_endpoint->isController(); }
    quint32 endpointId() const { return m_endpoint->endpointId(); }
    IpmbEndpoint::Error error() const { return m_endpoint->error(); }
    QString errorString() const { return m_endpoint->errorString(); }
    bool isWatchingPeers() const { return m_endpoint->isWatchingPeers(); }
    void setWatchingPeers(bool watching) { m_endpoint->setWatchingPeers(watching); }

    // payload: any JavaScript value that converts to a QVariant (string, number, array, object,
    // ArrayBuffer), or a value a C++ function returned.
    Q_INVOKABLE bool send(const IpmbSelector &selector, const QVariant &payload);
    Q_INVOKABLE void join() { m_endpoint->join(); }
    Q_INVOKABLE void leave() { m_endpoint->leave(); }
    Q_INVOKABLE void clearError() { m_endpoint->clearError(); }
    Q_INVOKABLE QList<IpmbPeer> peers() const { return m_endpoint->peers(); }
    // A JavaScript Promise that settles with the reply (a message) or an Error whose `error` is
    // the reason (an Endpoint error value).
    Q_INVOKABLE QJSValue request(const IpmbSelector &selector, const QVariant &payload, int timeoutMsecs = 30000);
    Q_INVOKABLE bool reply(const IpmbMessage &request, const QVariant &payload);

    void classBegin() override { }
    void componentComplete() override;

Q_SIGNALS:
    void identifierChanged();
    void labelChanged();
    void tokenChanged();
    void joinTimeoutChanged();
    void activeChanged();
    void stateChanged();
    void controllerChanged();
    void joined();
    void errorOccurred(IpmbEndpoint::Error error);
    void messageReceived(const IpmbMessage &message);
    void messagesDropped(quint64 count);
    void watchingPeersChanged();
    void peerJoined(const IpmbPeer &peer);
    void peerLeft(const IpmbPeer &peer);

private:
    void update();

    IpmbEndpoint *m_endpoint;
    bool m_active = true;
    bool m_complete = false;
};

#endif // IPMBQMLENDPOINT_H
