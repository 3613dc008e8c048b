// SPDX-License-Identifier: BSD-3-Clause
#ifndef IPMBQT_TOOL_MQTTCLIENT_H
#define IPMBQT_TOOL_MQTTCLIENT_H

#include <QtCore/qbytearray.h>
#include <QtCore/qlist.h>
#include <QtCore/qmutex.h>
#include <QtCore/qobject.h>
#include <QtCore/qstring.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

struct mosquitto;
struct mosquitto_message;
typedef struct mqtt5__property mosquitto_property;

// MQTT v5 user properties, in the order they travel (a key may repeat).
using MqttUserProperties = QList<std::pair<QByteArray, QByteArray>>;

// One message from the broker, copied out of libmosquitto's buffers.
struct MqttMessage
{
    QByteArray topic;
    QByteArray payload;
    QByteArray contentType;
    MqttUserProperties userProperties;
    int qos = 0;
    bool retain = false;
};

struct MqttOptions
{
    QByteArray host;
    int port = 1883;
    QByteArray clientId;          // empty: the broker assigns one (then no persistent session)
    int keepaliveSecs = 30;
    int qos = 1;                  // of every publish and subscription
    QList<QByteArray> subscriptions;
    quint32 maxPacketBytes = 0;   // announced to the broker in CONNECT (0: MQTT's own limit)
    quint32 sessionExpirySecs = 0;// 0: clean start, the session ends with the connection
    int reconnectMinMsecs = 250;
    int reconnectMaxMsecs = 30000;
    QByteArray username;
    QByteArray password;
    QByteArray caFile;            // non-empty: TLS, the broker's certificate checked against it
    QByteArray certFile, keyFile; // client certificate, optional
    qint64 maxBacklogMessages = 10000;  // published, not yet acknowledged (QoS 0: not yet written)
    qint64 maxBacklogBytes = 64 * 1024 * 1024;
    qint64 maxInboxMessages = 100000;   // received, not yet taken by the Qt thread
    qint64 maxInboxBytes = 64 * 1024 * 1024;
};

// A client of one MQTT v5 broker. libmosquitto runs on a thread of this class's own (the network
// loop, connects and reconnects, which block in connect(2) and getaddrinfo(3) and so must not run
// on the Qt thread); its callbacks copy what they get into a queue under a mutex and wake the
// object's thread with one queued call per batch. publish() may be called from the object's
// thread while the loop runs: libmosquitto locks its own queues (mosquitto_threaded_set()).
//
// Reconnection is this class's, not libmosquitto's loop_forever(): that one gives up for good on
// some errors (a malformed packet, a refused authentication) and its back-off sleep cannot be
// interrupted from outside except by mosquitto_loop_stop(), which only works for its own thread.
class MqttClient : public QObject
{
    Q_OBJECT
public:
    enum class PublishResult {
        Queued,       // handed to libmosquitto
        NotConnected, // QoS 0 while the broker is away: libmosquitto would drop it at the reconnect
        BacklogFull,  // too many publishes not yet acknowledged (maxBacklogMessages/Bytes)
        Refused,      // libmosquitto refused it (too large for the broker, bad topic): see errorString
    };

    explicit MqttClient(QObject *parent = nullptr);
    ~MqttClient() override;

    // Connects (blocking: at most the TCP connect and TLS handshake; the CONNACK arrives later,
    // as connected() or connectFailed()), then starts the network thread. False with the reason
    // when the broker cannot be reached at all.
    bool start(const MqttOptions &options, QString *errorString);
    // Sends DISCONNECT (if connected), waits up to `msecs` for it to be written, and stops the thread.
    void stop(int msecs = 2000);

    PublishResult publish(const QByteArray &topic, const QByteArray &payload, const QByteArray &contentType,
                          const MqttUserProperties &properties, QString *errorString);

    bool isConnected() const { return m_connected.load(); }
    // Messages received since the last call, oldest first.
    std::deque<MqttMessage> takeMessages();

    struct Counters
    {
        quint64 published = 0;          // acknowledged by the broker (QoS 0: written to the socket)
        quint64 refusedByBroker = 0;    // PUBACK/PUBREC with a failure reason code
        quint64 lostAtDisconnect = 0;   // QoS 0, queued but not written when the connection went
        quint64 inboxFull = 0;          // received but dropped: the Qt thread fell behind
        quint64 connects = 0;
    };
    Counters counters() const;
    qint64 backlogMessages() const;

Q_SIGNALS:
    // The broker accepted the connection and every subscription was answered (`grantedQos` is the
    // lowest QoS granted; -1 if one was refused, with `refused` naming it).
    void connected(int grantedQos, const QString &refused);
    // The broker refused the connection (CONNACK with a failure reason); the client retries.
    void connectFailed(const QString &reason);
    void disconnected(const QString &reason);
    void messagesArrived();

private:
    static void onConnect(mosquitto *, void *self, int rc, int flags, const mosquitto_property *);
    static void onDisconnect(mosquitto *, void *self, int rc, const mosquitto_property *);
    static void onPublish(mosquitto *, void *self, int mid, int reasonCode, const mosquitto_property *);
    static void onMessage(mosquitto *, void *self, const mosquitto_message *, const mosquitto_property *);
    static void onSubscribe(mosquitto *, void *self, int mid, int count, const int *granted, const mosquitto_property *);

    void run();
    void waitBeforeReconnect(int msecs);
    void post(std::function<void()> call);
    void lostConnection(const QString &reason);

    MqttOptions m_options;
    mosquitto *m_mosq = nullptr;
    std::thread m_thread;
    std::atomic<bool> m_stopping {false};
    std::atomic<qint64> m_stopDeadlineMsecs {0};     // QDeadlineTimer-style: since the steady clock's epoch
    std::atomic<bool> m_connected {false};
    std::mutex m_sleepMutex;             // guards the reconnect sleep, so that stop() can end it
    std::condition_variable m_sleepCondition;

    // Shared by the network thread and the object's thread.
    mutable QMutex m_mutex;
    std::deque<MqttMessage> m_inbox;                 // guarded by m_mutex
    qint64 m_inboxBytes = 0;                         // guarded by m_mutex
    struct Pending { qint64 bytes; int qos; quint64 epoch; };
    std::unordered_map<int, Pending> m_pending;      // guarded by m_mutex: mid -> what is owed
    std::unordered_set<int> m_completedEarly;        // guarded by m_mutex: on_publish before publish() returned
    qint64 m_pendingBytes = 0;                       // guarded by m_mutex
    Counters m_counters;                             // guarded by m_mutex
    quint64 m_epoch = 0;                             // guarded by m_mutex: connections lost so far
    int m_subscribeMid = -1;                         // network thread only
    int m_reconnectDelayMsecs = 0;                   // network thread only
    bool m_wasConnected = false;                     // network thread only
};

#endif // IPMBQT_TOOL_MQTTCLIENT_H
