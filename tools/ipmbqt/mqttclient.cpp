// SPDX-License-Identifier: BSD-3-Clause
#include "mqttclient.h"

#include <QtCore/qloggingcategory.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <errno.h>

Q_LOGGING_CATEGORY(lcBridgeMqtt, "ipmbqt.bridge.mqtt", QtWarningMsg)

using namespace Qt::StringLiterals;

namespace {

qint64 steadyMsecs()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
}

QString mosquittoError(int rc)
{
    QString text = QString::fromUtf8(mosquitto_strerror(rc));
    if (rc == MOSQ_ERR_ERRNO)
        text = QString::fromLocal8Bit(std::strerror(errno));
    return text;
}

// Frees a property list however the function that built it returns.
struct PropertyList
{
    mosquitto_property *list = nullptr;
    ~PropertyList() { mosquitto_property_free_all(&list); }
};

} // namespace

MqttClient::MqttClient(QObject *parent) : QObject(parent)
{
    mosquitto_lib_init();
}

MqttClient::~MqttClient()
{
    stop(0);
    if (m_mosq)
        mosquitto_destroy(m_mosq);
    mosquitto_lib_cleanup();
}

bool MqttClient::start(const MqttOptions &options, QString *errorString)
{
    Q_ASSERT(!m_mosq);
    m_options = options;
    const bool cleanStart = options.sessionExpirySecs == 0;
    m_mosq = mosquitto_new(options.clientId.isEmpty() ? nullptr : options.clientId.constData(), cleanStart, this);
    if (!m_mosq) {
        *errorString = u"cannot create an MQTT client: %1"_s.arg(QString::fromLocal8Bit(std::strerror(errno)));
        return false;
    }
    mosquitto_int_option(m_mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(m_mosq, MOSQ_OPT_TCP_NODELAY, 1); // one message is one packet: no Nagle delay
    mosquitto_threaded_set(m_mosq, true);
    mosquitto_connect_v5_callback_set(m_mosq, &MqttClient::onConnect);
    mosquitto_disconnect_v5_callback_set(m_mosq, &MqttClient::onDisconnect);
    mosquitto_publish_v5_callback_set(m_mosq, &MqttClient::onPublish);
    mosquitto_message_v5_callback_set(m_mosq, &MqttClient::onMessage);
    mosquitto_subscribe_v5_callback_set(m_mosq, &MqttClient::onSubscribe);

    int rc = MOSQ_ERR_SUCCESS;
    if (!options.username.isEmpty())
        rc = mosquitto_username_pw_set(m_mosq, options.username.constData(),
                                       options.password.isNull() ? nullptr : options.password.constData());
    if (rc == MOSQ_ERR_SUCCESS && !options.caFile.isEmpty()) {
        rc = mosquitto_tls_set(m_mosq, options.caFile.constData(), nullptr,
                               options.certFile.isEmpty() ? nullptr : options.certFile.constData(),
                               options.keyFile.isEmpty() ? nullptr : options.keyFile.constData(), nullptr);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        *errorString = u"MQTT options refused: %1"_s.arg(mosquittoError(rc));
        return false;
    }

    PropertyList properties;
    if (options.maxPacketBytes > 0)
        mosquitto_property_add_int32(&properties.list, MQTT_PROP_MAXIMUM_PACKET_SIZE, options.maxPacketBytes);
    if (options.sessionExpirySecs > 0)
        mosquitto_property_add_int32(&properties.list, MQTT_PROP_SESSION_EXPIRY_INTERVAL, options.sessionExpirySecs);
    m_reconnectDelayMsecs = options.reconnectMinMsecs;
    rc = mosquitto_connect_bind_v5(m_mosq, options.host.constData(), options.port, options.keepaliveSecs, nullptr,
                                   properties.list);
    if (rc != MOSQ_ERR_SUCCESS) {
        *errorString = u"cannot connect to the MQTT broker %1:%2: %3"_s.arg(QString::fromUtf8(options.host))
                               .arg(options.port)
                               .arg(mosquittoError(rc));
        return false;
    }
    m_thread = std::thread([this] { run(); });
    return true;
}

void MqttClient::stop(int msecs)
{
    if (!m_thread.joinable())
        return;
    m_stopDeadlineMsecs = steadyMsecs() + msecs;
    m_stopping = true;
    if (m_connected)
        mosquitto_disconnect_v5(m_mosq, MQTT_RC_NORMAL_DISCONNECTION, nullptr);
    {
        std::lock_guard<std::mutex> locker(m_sleepMutex);
        m_sleepCondition.notify_all();
    }
    m_thread.join();
}

// The network thread. mosquitto_loop() waits at most 200 ms, so that stop() is seen soon.
void MqttClient::run()
{
    for (;;) {
        const int rc = mosquitto_loop(m_mosq, 200, 1);
        if (m_stopping) {
            // Until the DISCONNECT is written (the loop then fails: no connection) or time is up.
            if (rc != MOSQ_ERR_SUCCESS || !m_connected || steadyMsecs() >= m_stopDeadlineMsecs)
                break;
            continue;
        }
        if (rc == MOSQ_ERR_SUCCESS)
            continue;
        lostConnection(rc == MOSQ_ERR_NO_CONN ? u"connection lost"_s : mosquittoError(rc));
        waitBeforeReconnect(m_reconnectDelayMsecs);
        m_reconnectDelayMsecs = qMin(m_reconnectDelayMsecs * 2, m_options.reconnectMaxMsecs);
        if (m_stopping)
            break;
        // Blocking: a TCP connect (and TLS handshake). The CONNACK comes through mosquitto_loop().
        const int reconnect = mosquitto_reconnect(m_mosq);
        if (reconnect != MOSQ_ERR_SUCCESS)
            qCDebug(lcBridgeMqtt) << "reconnect failed:" << mosquittoError(reconnect);
    }
}

void MqttClient::waitBeforeReconnect(int msecs)
{
    std::unique_lock<std::mutex> locker(m_sleepMutex);
    m_sleepCondition.wait_for(locker, std::chrono::milliseconds(msecs), [this] { return m_stopping.load(); });
}

void MqttClient::post(std::function<void()> call)
{
    QMetaObject::invokeMethod(this, std::move(call), Qt::QueuedConnection);
}

// Network thread. Once per lost connection: QoS 0 publishes that were queued but not written are
// gone (libmosquitto drops its packet queue at the reconnect); QoS 1 and 2 ones stay and are sent
// again after the reconnect.
void MqttClient::lostConnection(const QString &reason)
{
    m_connected = false;
    if (!m_wasConnected)
        return;
    m_wasConnected = false;
    {
        QMutexLocker locker(&m_mutex);
        ++m_epoch;
        for (auto it = m_pending.begin(); it != m_pending.end();) {
            if (it->second.qos == 0) {
                m_pendingBytes -= it->second.bytes;
                ++m_counters.lostAtDisconnect;
                it = m_pending.erase(it);
            } else {
                ++it;
            }
        }
    }
    post([this, reason] { Q_EMIT disconnected(reason); });
}

void MqttClient::onConnect(mosquitto *, void *self, int rc, int, const mosquitto_property *)
{
    auto *client = static_cast<MqttClient *>(self);
    if (rc != 0) {
        const QString reason = QString::fromUtf8(mosquitto_reason_string(rc));
        client->post([client, reason] { Q_EMIT client->connectFailed(reason); });
        return;
    }
    client->m_reconnectDelayMsecs = client->m_options.reconnectMinMsecs;
    client->m_wasConnected = true;
    client->m_connected = true;
    {
        QMutexLocker locker(&client->m_mutex);
        ++client->m_counters.connects;
    }
    const QList<QByteArray> &filters = client->m_options.subscriptions;
    if (filters.isEmpty()) {
        const int qos = client->m_options.qos;
        client->post([client, qos] { Q_EMIT client->connected(qos, QString()); });
        return;
    }
    std::vector<char *> pointers;
    for (const QByteArray &filter : filters)
        pointers.push_back(const_cast<char *>(filter.constData()));
    // No-local: the broker does not send this client what it published itself (loop prevention,
    // doc/scale.md), even where the import filter covers the export topic.
    const int result = mosquitto_subscribe_multiple(client->m_mosq, &client->m_subscribeMid, int(pointers.size()),
                                                    pointers.data(), client->m_options.qos, MQTT_SUB_OPT_NO_LOCAL,
                                                    nullptr);
    if (result != MOSQ_ERR_SUCCESS) {
        const QString reason = u"cannot subscribe: %1"_s.arg(mosquittoError(result));
        client->post([client, reason] { Q_EMIT client->connected(-1, reason); });
    }
}

void MqttClient::onSubscribe(mosquitto *, void *self, int mid, int count, const int *granted, const mosquitto_property *)
{
    auto *client = static_cast<MqttClient *>(self);
    if (mid != client->m_subscribeMid)
        return;
    int lowest = client->m_options.qos;
    QStringList refused;
    for (int i = 0; i < count && i < client->m_options.subscriptions.size(); ++i) {
        if (granted[i] >= 0x80)
            refused.append(u"%1 (%2)"_s.arg(QString::fromUtf8(client->m_options.subscriptions.at(i)),
                                            QString::fromUtf8(mosquitto_reason_string(granted[i]))));
        else
            lowest = qMin(lowest, granted[i]);
    }
    if (!refused.isEmpty())
        lowest = -1;
    const QString why = refused.join(u", "_s);
    client->post([client, lowest, why] { Q_EMIT client->connected(lowest, why); });
}

void MqttClient::onDisconnect(mosquitto *, void *self, int rc, const mosquitto_property *)
{
    auto *client = static_cast<MqttClient *>(self);
    client->lostConnection(rc == 0 ? u"disconnected"_s : mosquittoError(rc));
    std::lock_guard<std::mutex> locker(client->m_sleepMutex);
    client->m_sleepCondition.notify_all();
}

void MqttClient::onPublish(mosquitto *, void *self, int mid, int reasonCode, const mosquitto_property *)
{
    auto *client = static_cast<MqttClient *>(self);
    QMutexLocker locker(&client->m_mutex);
    if (reasonCode >= 0x80) {
        ++client->m_counters.refusedByBroker;
        qCWarning(lcBridgeMqtt, "the broker refused a publish: %s", mosquitto_reason_string(reasonCode));
    } else {
        ++client->m_counters.published;
    }
    const auto it = client->m_pending.find(mid);
    if (it == client->m_pending.end()) {
        client->m_completedEarly.insert(mid);
        return;
    }
    client->m_pendingBytes -= it->second.bytes;
    client->m_pending.erase(it);
}

void MqttClient::onMessage(mosquitto *, void *self, const mosquitto_message *message, const mosquitto_property *props)
{
    auto *client = static_cast<MqttClient *>(self);
    const qint64 bytes = qint64(message->payloadlen) + qint64(sizeof(MqttMessage));
    {
        // Checked before anything is copied: libmosquitto has already read the packet (at most the
        // maximum packet size announced in CONNECT), but the queue to the Qt thread is bounded.
        QMutexLocker locker(&client->m_mutex);
        if (qint64(client->m_inbox.size()) >= client->m_options.maxInboxMessages
            || client->m_inboxBytes + bytes > client->m_options.maxInboxBytes) {
            ++client->m_counters.inboxFull;
            return;
        }
    }
    MqttMessage copy;
    copy.topic = QByteArray(message->topic);
    copy.payload = QByteArray(static_cast<const char *>(message->payload), message->payloadlen);
    copy.qos = message->qos;
    copy.retain = message->retain;
    char *contentType = nullptr;
    if (mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &contentType, false)) {
        copy.contentType = QByteArray(contentType);
        std::free(contentType);
    }
    char *name = nullptr;
    char *value = nullptr;
    bool skipFirst = false;
    for (const mosquitto_property *p = props;
         (p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, skipFirst)) != nullptr;
         skipFirst = true) {
        copy.userProperties.append({QByteArray(name), QByteArray(value)});
        std::free(name);
        std::free(value);
        name = value = nullptr;
    }
    bool wake = false;
    {
        QMutexLocker locker(&client->m_mutex);
        wake = client->m_inbox.empty();
        client->m_inboxBytes += bytes;
        client->m_inbox.push_back(std::move(copy));
    }
    if (wake)
        client->post([client] { Q_EMIT client->messagesArrived(); });
}

std::deque<MqttMessage> MqttClient::takeMessages()
{
    std::deque<MqttMessage> taken;
    QMutexLocker locker(&m_mutex);
    taken.swap(m_inbox);
    m_inboxBytes = 0;
    return taken;
}

MqttClient::PublishResult MqttClient::publish(const QByteArray &topic, const QByteArray &payload,
                                              const QByteArray &contentType, const MqttUserProperties &properties,
                                              QString *errorString)
{
    const int qos = m_options.qos;
    if (qos == 0 && !m_connected)
        return PublishResult::NotConnected;
    const qint64 bytes = payload.size() + topic.size();
    quint64 epoch = 0;
    {
        QMutexLocker locker(&m_mutex);
        if (qint64(m_pending.size()) >= m_options.maxBacklogMessages
            || m_pendingBytes + bytes > m_options.maxBacklogBytes)
            return PublishResult::BacklogFull;
        epoch = m_epoch;
    }
    PropertyList list;
    int rc = MOSQ_ERR_SUCCESS;
    if (!contentType.isEmpty())
        rc = mosquitto_property_add_string(&list.list, MQTT_PROP_CONTENT_TYPE, contentType.constData());
    for (const auto &[name, value] : properties) {
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_property_add_string_pair(&list.list, MQTT_PROP_USER_PROPERTY, name.constData(),
                                                    value.constData());
    }
    int mid = 0;
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_publish_v5(m_mosq, &mid, topic.constData(), int(payload.size()), payload.constData(), qos,
                                  false, list.list);
    if (rc != MOSQ_ERR_SUCCESS) {
        *errorString = mosquittoError(rc);
        return PublishResult::Refused;
    }
    QMutexLocker locker(&m_mutex);
    if (m_completedEarly.erase(mid) > 0)
        return PublishResult::Queued;
    if (qos == 0 && epoch != m_epoch) { // queued as the connection went: dropped at the reconnect
        ++m_counters.lostAtDisconnect;
        return PublishResult::Queued;
    }
    m_pending[mid] = Pending {bytes, qos, epoch};
    m_pendingBytes += bytes;
    return PublishResult::Queued;
}

MqttClient::Counters MqttClient::counters() const
{
    QMutexLocker locker(&m_mutex);
    return m_counters;
}

qint64 MqttClient::backlogMessages() const
{
    QMutexLocker locker(&m_mutex);
    return qint64(m_pending.size());
}
