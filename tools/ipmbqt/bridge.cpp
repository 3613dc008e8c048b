// SPDX-License-Identifier: BSD-3-Clause
// ipmbqt bridge: one bus and one MQTT broker, messages both ways (doc/scale.md, doc/tools.md).
#include "bridgeformat.h"
#include "common.h"
#include "mqttclient.h"
#include "verbs.h"

#include "ipmblimits_p.h"
#include "ipmbtoolsupport_p.h"

#include <QtCore/qcoreapplication.h>
#include <QtCore/qelapsedtimer.h>
#include <QtCore/qfile.h>
#include <QtCore/qprocess.h>
#include <QtCore/qrandom.h>
#include <QtCore/qsysinfo.h>

#include <deque>
#include <memory>

#include <signal.h>
#include <unistd.h>

using namespace Qt::StringLiterals;

namespace {

const QString Verb = u"ipmbqt bridge"_s;

// The largest MQTT packet (the remaining length is at most 268,435,455 bytes, plus the fixed header).
constexpr qint64 MaxMqttPacket = 268435455 + 5;
// Room for the topic and the properties of one PUBLISH besides its payload.
constexpr qint64 PublishOverhead = 256 * IpmbLimits::KiB;
// Imported messages the bus would not take yet (QueueFullError), kept in order until it does.
constexpr qsizetype MaxWaitingMessages = 10000;
constexpr qint64 MaxWaitingBytes = 64 * IpmbLimits::MiB;

// Warnings about dropped messages: a hostile publisher must not be able to flood stderr. At most
// 20 lines every 10 s; the rest are counted and mentioned once the window is over.
class DropLog
{
public:
    void warn(const QString &line)
    {
        if (!m_window.isValid() || m_window.hasExpired(10000)) {
            if (m_suppressed > 0)
                printError(Verb, u"%1 more dropped messages were not shown"_s.arg(m_suppressed));
            m_window.start();
            m_shown = 0;
            m_suppressed = 0;
        }
        if (m_shown++ < 20)
            printError(Verb, line);
        else
            ++m_suppressed;
    }

private:
    QElapsedTimer m_window;
    int m_shown = 0;
    quint64 m_suppressed = 0;
};

struct BridgeOptions
{
    QStringList exportNames;
    QStringList extraNames;
    QByteArray exportTopic;
    std::optional<IpmbLabelOp> to;
    qint64 maxPayload = IpmbLimits::MaxPayload;
    MqttOptions mqtt;
};

class Bridge : public QObject
{
public:
    explicit Bridge(const BridgeOptions &options) : m_options(options) { }

    int run(const QCommandLineParser &parser);

private:
    void exportMessage(const IpmbMessage &message);
    void importMessages();
    void sendLocal(IpmbMessage message, qint64 bytes);
    void sendWaiting();
    void dropExport(const QString &why, quint64 &counter);
    void dropImport(const MqttMessage &message, const QString &why);
    QString summary() const;

    BridgeOptions m_options;
    IpmbEndpoint m_endpoint;
    MqttClient m_mqtt;
    DropLog m_log;
    std::deque<std::pair<IpmbMessage, qint64>> m_waiting; // imported, waiting for room on the bus
    qint64 m_waitingBytes = 0;
    bool m_stopping = false;

    struct {
        quint64 exported = 0;       // handed to the MQTT client
        quint64 imported = 0;       // sent on the bus
        quint64 refusedHandles = 0; // carried kernel handles or regions
        quint64 refusedRequests = 0;
        quint64 ownMessages = 0;    // sent by this bridge: never exported
        quint64 exportDropped = 0;  // broker away (QoS 0), backlog full, too large, not encodable
        quint64 importDropped = 0;  // hostile or malformed, own origin, the bus refused it
        quint64 importQueueFull = 0;
        quint64 disconnects = 0;
    } m_counts;
};

int Bridge::run(const QCommandLineParser &parser)
{
    // The broker first: messages taken from the bus before it answered would only pile up.
    QString why;
    if (!m_mqtt.start(m_options.mqtt, &why)) {
        printError(Verb, why);
        return ExitFailure;
    }
    {
        EventWait wait(15000);
        QString failure;
        QObject::connect(&m_mqtt, &MqttClient::connectFailed, &m_mqtt, [&](const QString &reason) {
            failure = u"the MQTT broker refused the connection: %1"_s.arg(reason);
            wait.finish(ExitFailure);
        });
        QObject::connect(&m_mqtt, &MqttClient::connected, &m_mqtt, [&](int qos, const QString &refused) {
            if (qos < 0) {
                failure = u"the MQTT broker refused the subscription: %1"_s.arg(refused);
                wait.finish(ExitFailure);
            } else {
                wait.finish(ExitOk);
            }
        });
        const int result = wait.exec();
        QObject::disconnect(&m_mqtt, nullptr, &m_mqtt, nullptr);
        if (result != ExitOk) {
            printError(Verb, result == EventWait::TimedOut ? u"the MQTT broker did not answer within 15 s"_s : failure);
            m_mqtt.stop();
            return ExitFailure;
        }
    }

    // The bus. The endpoint keeps each payload as it was on the wire: a bridge forwards types it
    // does not know, and never decodes what it only passes on.
    IpmbToolSupport::setKeepsEncodedPayloads(&m_endpoint, true);
    m_endpoint.setIdentifier(parser.value(u"bus"_s));
    if (parser.isSet(u"token"_s))
        m_endpoint.setToken(parser.value(u"token"_s).toUtf8());
    QStringList names = m_options.exportNames + m_options.extraNames;
    names.append(QLatin1String(BridgeFormat::BridgeLabelName));
    names.removeDuplicates();
    m_endpoint.setLabel(IpmbLabel(names));
    bool ok = false;
    const int joinTimeout = parser.value(u"join-timeout"_s).toInt(&ok);
    m_endpoint.setJoinTimeout(ok && joinTimeout > 0 ? joinTimeout : 5000);
    m_endpoint.join();
    if (!m_endpoint.waitForJoined(m_endpoint.joinTimeout() + 1000)) {
        printError(Verb, u"could not join bus '%1': %2"_s.arg(m_endpoint.identifier(), m_endpoint.errorString()));
        m_mqtt.stop();
        return ExitFailure;
    }

    QObject::connect(&m_endpoint, &IpmbEndpoint::messageReceived, this,
                     [this](const IpmbMessage &message) { exportMessage(message); });
    QObject::connect(&m_endpoint, &IpmbEndpoint::bytesWritten, this, [this] { sendWaiting(); });
    QObject::connect(&m_mqtt, &MqttClient::messagesArrived, this, [this] { importMessages(); });
    // What arrived while the endpoint was not joined (a failover) waits in the client's inbox.
    QObject::connect(&m_endpoint, &IpmbEndpoint::joined, this, [this] { importMessages(); });
    QObject::connect(&m_mqtt, &MqttClient::disconnected, this, [this](const QString &reason) {
        ++m_counts.disconnects;
        printLine(u"mqtt disconnected reason=%1"_s.arg(reason));
    });
    QObject::connect(&m_mqtt, &MqttClient::connected, this, [this](int qos, const QString &refused) {
        if (qos < 0)
            printError(Verb, u"the MQTT broker refused the subscription: %1"_s.arg(refused));
        printLine(u"mqtt connected"_s);
    });
    QObject::connect(&m_mqtt, &MqttClient::connectFailed, this, [this](const QString &reason) {
        printError(Verb, u"the MQTT broker refused the connection: %1 (retrying)"_s.arg(reason));
    });

    EventWait running(-1);
    QObject::connect(&m_endpoint, &IpmbEndpoint::stateChanged, this, [&](IpmbEndpoint::State state) {
        if (state == IpmbEndpoint::UnjoinedState && !m_stopping) {
            printError(Verb, u"left bus '%1': %2"_s.arg(m_endpoint.identifier(), m_endpoint.errorString()));
            running.finish(ExitFailure);
        }
    });
    // SIGINT/SIGTERM: a clean end (leave the bus, disconnect from the broker, print the counts).
    const SignalsEnd signalsEnd([&running] { running.finish(ExitOk); });

    printLine(u"bridge ready bus=%1 endpoint=%2 label=%3 mqtt=%4:%5 client-id=%6 export-topic=%7 import=%8 qos=%9"_s
                      .arg(m_endpoint.identifier())
                      .arg(m_endpoint.endpointId())
                      .arg(names.join(u','))
                      .arg(QString::fromUtf8(m_options.mqtt.host))
                      .arg(m_options.mqtt.port)
                      .arg(QString::fromUtf8(m_options.mqtt.clientId), QString::fromUtf8(m_options.exportTopic))
                      .arg(QString::fromUtf8(m_options.mqtt.subscriptions.isEmpty()
                                                     ? QByteArray("-")
                                                     : m_options.mqtt.subscriptions.join(',')))
                      .arg(m_options.mqtt.qos));
    importMessages(); // what arrived while the bus was joined

    const int result = running.exec();
    m_stopping = true;
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    m_endpoint.leave();
    // What the broker has not acknowledged yet gets a moment (QoS 1 and 2), then DISCONNECT.
    {
        EventWait drained(2000);
        QTimer poll;
        QObject::connect(&poll, &QTimer::timeout, &poll, [&] {
            if (m_mqtt.backlogMessages() == 0 || !m_mqtt.isConnected())
                drained.finish();
        });
        poll.start(10);
        drained.exec();
    }
    m_mqtt.stop();
    printLine(summary());
    return result;
}

void Bridge::dropExport(const QString &why, quint64 &counter)
{
    ++counter;
    m_log.warn(u"not exported: %1"_s.arg(why));
}

void Bridge::dropImport(const MqttMessage &message, const QString &why)
{
    ++m_counts.importDropped;
    m_log.warn(u"dropped a message from topic '%1': %2"_s.arg(QString::fromUtf8(message.topic.left(200)), why));
}

void Bridge::exportMessage(const IpmbMessage &message)
{
    if (message.senderId() == m_endpoint.endpointId()) {
        ++m_counts.ownMessages; // what this bridge imported never goes back out
        return;
    }
    if (message.isRequest())
        return dropExport(u"a request from pid %1: requests and replies are not bridged"_s.arg(message.senderPid()),
                          m_counts.refusedRequests);
    if (message.handleCount() > 0 || message.regionCount() > 0)
        return dropExport(u"a message from pid %1 carries %2 kernel handles and %3 shared-memory regions, which "
                          "cannot leave this machine"_s.arg(message.senderPid())
                                  .arg(message.handleCount())
                                  .arg(message.regionCount()),
                          m_counts.refusedHandles);
    const QByteArray encoded = IpmbToolSupport::encodedPayload(message);
    QString why;
    const std::optional<QByteArray> typeName = BridgeFormat::payloadTypeName(encoded, &why);
    if (!typeName)
        return dropExport(why, m_counts.exportDropped);
    if (encoded.size() + PublishOverhead > MaxMqttPacket || encoded.size() > m_options.maxPayload)
        return dropExport(u"a payload of %1 bytes is larger than MQTT or --max-payload allow"_s.arg(encoded.size()),
                          m_counts.exportDropped);
    const std::optional<MqttUserProperties> properties = BridgeFormat::exportProperties(
            message, *typeName, m_options.mqtt.clientId, m_endpoint.identifier(), &why);
    if (!properties)
        return dropExport(why, m_counts.exportDropped);
    switch (m_mqtt.publish(m_options.exportTopic, encoded, BridgeFormat::ContentType, *properties, &why)) {
    case MqttClient::PublishResult::Queued:
        ++m_counts.exported;
        break;
    case MqttClient::PublishResult::NotConnected:
        dropExport(u"the broker is away (QoS 0 is not queued)"_s, m_counts.exportDropped);
        break;
    case MqttClient::PublishResult::BacklogFull:
        dropExport(u"%1 messages wait for the broker's acknowledgement already"_s.arg(m_mqtt.backlogMessages()),
                   m_counts.exportDropped);
        break;
    case MqttClient::PublishResult::Refused:
        dropExport(u"the MQTT client refused it: %1"_s.arg(why), m_counts.exportDropped);
        break;
    }
}

void Bridge::importMessages()
{
    if (m_stopping || !m_endpoint.isJoined())
        return;
    std::deque<MqttMessage> messages = m_mqtt.takeMessages();
    for (const MqttMessage &mqttMessage : messages) {
        QString why;
        std::optional<BridgeFormat::Imported> imported =
                BridgeFormat::parseImported(mqttMessage, m_options.maxPayload, &why);
        if (!imported) {
            dropImport(mqttMessage, why);
            continue;
        }
        if (imported->origin == m_options.mqtt.clientId) {
            dropImport(mqttMessage, u"this bridge published it (a broker that ignores no-local?)"_s);
            continue;
        }
        IpmbSelector selector = imported->selector;
        if (m_options.to)
            selector.setLabelOp(*m_options.to);
        // No bridge on this bus gets it, so no bridge sends it back out: a message crosses once.
        selector.setLabelOp(selector.labelOp() && !IpmbLabelOp(QLatin1String(BridgeFormat::BridgeLabelName)));
        sendLocal(IpmbToolSupport::messageWithEncodedPayload(selector, mqttMessage.payload),
                  mqttMessage.payload.size());
    }
}

void Bridge::sendLocal(IpmbMessage message, qint64 bytes)
{
    if (m_waiting.empty()) {
        if (m_endpoint.send(message)) {
            ++m_counts.imported;
            return;
        }
        if (m_endpoint.error() != IpmbEndpoint::QueueFullError) {
            ++m_counts.importDropped;
            m_log.warn(u"the bus refused an imported message: %1"_s.arg(m_endpoint.errorString()));
            return;
        }
    }
    if (qsizetype(m_waiting.size()) >= MaxWaitingMessages || m_waitingBytes + bytes > MaxWaitingBytes) {
        ++m_counts.importQueueFull;
        m_log.warn(u"dropped an imported message: the bus is not taking them fast enough (%1 wait)"_s.arg(
                m_waiting.size()));
        return;
    }
    m_waitingBytes += bytes;
    m_waiting.emplace_back(std::move(message), bytes);
}

void Bridge::sendWaiting()
{
    while (!m_waiting.empty()) {
        auto &[message, bytes] = m_waiting.front();
        if (!m_endpoint.send(message)) {
            if (m_endpoint.error() == IpmbEndpoint::QueueFullError)
                return; // bytesWritten() comes again
            ++m_counts.importDropped;
            m_log.warn(u"the bus refused an imported message: %1"_s.arg(m_endpoint.errorString()));
        } else {
            ++m_counts.imported;
        }
        m_waitingBytes -= bytes;
        m_waiting.pop_front();
    }
}

QString Bridge::summary() const
{
    const MqttClient::Counters mqtt = m_mqtt.counters();
    return u"bridge summary exported=%1 acknowledged=%2 imported=%3 refused-handles=%4 refused-requests=%5 "
           "export-dropped=%6 broker-refused=%7 lost-at-disconnect=%8 import-dropped=%9 "_s
                   .arg(m_counts.exported)
                   .arg(mqtt.published)
                   .arg(m_counts.imported)
                   .arg(m_counts.refusedHandles)
                   .arg(m_counts.refusedRequests)
                   .arg(m_counts.exportDropped)
                   .arg(mqtt.refusedByBroker)
                   .arg(mqtt.lostAtDisconnect)
                   .arg(m_counts.importDropped)
            + u"import-queue-full=%1 inbox-full=%2 own=%3 disconnects=%4 connects=%5"_s
                      .arg(m_counts.importQueueFull + 0)
                      .arg(mqtt.inboxFull)
                      .arg(m_counts.ownMessages)
                      .arg(m_counts.disconnects)
                      .arg(mqtt.connects);
}

// HOST:PORT, [IPV6]:PORT, or HOST (port 1883).
bool parseBroker(const QString &text, QByteArray *host, int *port)
{
    QString h = text;
    *port = 1883;
    const qsizetype colon = text.lastIndexOf(u':');
    const qsizetype bracket = text.lastIndexOf(u']');
    if (colon > 0 && colon > bracket && (bracket >= 0 || text.count(u':') == 1)) {
        bool ok = false;
        *port = text.mid(colon + 1).toInt(&ok);
        if (!ok || *port < 1 || *port > 65535)
            return false;
        h = text.left(colon);
    }
    if (h.startsWith(u'[') && h.endsWith(u']'))
        h = h.mid(1, h.size() - 2);
    *host = h.toUtf8();
    return !host->isEmpty();
}

QStringList commaList(const QStringList &values)
{
    QStringList names;
    for (const QString &value : values)
        names += value.split(u',', Qt::SkipEmptyParts);
    return names;
}

} // namespace

int runBridge(const QStringList &arguments)
{
    QCommandLineParser parser;
    addBusOptions(parser, u"More label names for the bridge's endpoint (besides the --export names and "
                          "'ipmbqt-bridge')."_s);
    parser.addOptions({
            {u"mqtt"_s, u"The MQTT v5 broker (required): HOST:PORT, [IPV6]:PORT, or HOST (port 1883)."_s,
             u"HOST:PORT"_s},
            {u"export"_s,
             u"Label names the bridge joins with, standing in for the receivers behind the broker: what is sent on "
             "this bus to a label op these names match goes to MQTT (comma-separated; repeatable)."_s,
             u"NAMES"_s},
            {u"topic"_s, u"The topic exported messages are published on (default: ipmbqt/<bus>)."_s, u"TOPIC"_s},
            {u"import"_s,
             u"Subscribe to this MQTT topic filter and send what arrives on this bus, with the selector it carries "
             "(repeatable)."_s,
             u"FILTER"_s},
            {u"to"_s, u"Send imported messages to this label op instead of the one they carry."_s, u"LABEL-OP"_s},
            {u"qos"_s, u"MQTT QoS of publishes and subscriptions: 0, 1 or 2 (default 1)."_s, u"N"_s, u"1"_s},
            {u"client-id"_s, u"MQTT client id (default: ipmbqt-bridge-<host>-<pid>-<random>)."_s, u"ID"_s},
            {u"session-expiry"_s,
             u"Keep the MQTT session this many seconds after a disconnect, so the broker queues QoS 1 and 2 "
             "messages for the import filters meanwhile (needs --client-id; default 0: clean start)."_s,
             u"S"_s},
            {u"keepalive"_s, u"MQTT keepalive in seconds (default 30)."_s, u"S"_s, u"30"_s},
            {u"reconnect-max"_s, u"Longest wait between reconnect attempts, in seconds (default 30)."_s, u"S"_s,
             u"30"_s},
            {u"max-payload"_s, u"Largest payload to forward either way, in bytes (default and at most 256 MiB)."_s,
             u"BYTES"_s},
            {u"username"_s, u"MQTT user name."_s, u"NAME"_s},
            {u"password-file"_s,
             u"Read the MQTT password from the first line of this file (or set IPMBQT_MQTT_PASSWORD; never on the "
             "command line)."_s,
             u"FILE"_s},
            {u"cafile"_s, u"Use TLS, and check the broker's certificate against these CA certificates (PEM)."_s,
             u"FILE"_s},
            {u"cert"_s, u"With --cafile: this client certificate (PEM)."_s, u"FILE"_s},
            {u"key"_s, u"With --cert: its private key (PEM)."_s, u"FILE"_s},
    });
    const VerbHelp help {
        u"--bus ID --mqtt HOST:PORT [options]"_s,
        u"Forward messages between a bus and an MQTT v5 broker, so that buses on\n"
        u"several machines reach each other. Messages sent on this bus to a label op\n"
        u"that the --export names match are published on --topic; messages on the\n"
        u"--import filters are sent on this bus with the selector they carry. Payloads\n"
        u"cross undecoded, with their type names. Runs until SIGINT or SIGTERM, then\n"
        u"prints counts. doc/scale.md says what it promises."_s,
    };
    if (const int result = parseVerbArguments(parser, arguments, help); result >= 0)
        return result;

    auto usage = [](const QString &message) {
        printError(Verb, message + u" (see '%1 --help')"_s.arg(Verb));
        return int(ExitUsage);
    };
    BridgeOptions options;
    if (!parser.isSet(u"mqtt"_s))
        return usage(u"--mqtt HOST:PORT is required"_s);
    if (!parseBroker(parser.value(u"mqtt"_s), &options.mqtt.host, &options.mqtt.port))
        return usage(u"--mqtt wants HOST:PORT, not '%1'"_s.arg(parser.value(u"mqtt"_s)));
    options.exportNames = commaList(parser.values(u"export"_s));
    options.extraNames = commaList(parser.values(u"label"_s));
    for (const QString &name : options.exportNames) {
        if (name.contains(u'&') || name.contains(u'|') || name.contains(u'!') || name.contains(u'(')
            || name.contains(u')') || name.trimmed() != name)
            return usage(u"--export takes label names, not a label op ('%1'): the bridge joins with them, and the bus "
                         "sends it what is addressed to them"_s.arg(name));
    }
    if (options.exportNames.contains(QLatin1String(BridgeFormat::BridgeLabelName)))
        return usage(u"'%1' cannot be exported: imported messages are kept away from it"_s.arg(
                QLatin1String(BridgeFormat::BridgeLabelName)));
    options.exportTopic = parser.isSet(u"topic"_s) ? parser.value(u"topic"_s).toUtf8()
                                                   : "ipmbqt/" + parser.value(u"bus"_s).toUtf8();
    QString why;
    if (!BridgeFormat::isValidTopicName(options.exportTopic, &why))
        return usage(u"--topic: "_s + why);
    for (const QString &filter : parser.values(u"import"_s)) {
        if (!BridgeFormat::isValidTopicFilter(filter.toUtf8(), &why))
            return usage(u"--import: "_s + why);
        options.mqtt.subscriptions.append(filter.toUtf8());
    }
    if (parser.isSet(u"to"_s)) {
        options.to = labelOpOption(parser, Verb, u"to"_s);
        if (!options.to)
            return ExitUsage;
    }
    const std::optional<qint64> qos = numberOption(parser, Verb, u"qos"_s, 1, 2);
    const std::optional<qint64> keepalive = numberOption(parser, Verb, u"keepalive"_s, 30, 65535);
    const std::optional<qint64> reconnectMax = numberOption(parser, Verb, u"reconnect-max"_s, 30, 3600);
    const std::optional<qint64> sessionExpiry = numberOption(parser, Verb, u"session-expiry"_s, 0, 0xFFFFFFFFLL);
    const std::optional<qint64> maxPayload =
            numberOption(parser, Verb, u"max-payload"_s, IpmbLimits::MaxPayload, IpmbLimits::MaxPayload);
    if (!qos || !keepalive || !reconnectMax || !sessionExpiry || !maxPayload)
        return ExitUsage;
    if (*keepalive != 0 && *keepalive < 5)
        return usage(u"--keepalive is 0 (none) or at least 5 seconds"_s);
    options.mqtt.qos = int(*qos);
    options.mqtt.keepaliveSecs = int(*keepalive);
    options.mqtt.reconnectMaxMsecs = int(qMax<qint64>(1, *reconnectMax) * 1000);
    options.mqtt.sessionExpirySecs = quint32(*sessionExpiry);
    options.maxPayload = *maxPayload;
    options.mqtt.maxPacketBytes = quint32(qMin(MaxMqttPacket, *maxPayload + PublishOverhead));
    if (parser.isSet(u"client-id"_s)) {
        options.mqtt.clientId = parser.value(u"client-id"_s).toUtf8();
        if (options.mqtt.clientId.isEmpty() || options.mqtt.clientId.size() > 0xFFFF)
            return usage(u"--client-id wants 1 to 65,535 bytes"_s);
    } else if (options.mqtt.sessionExpirySecs > 0) {
        return usage(u"--session-expiry needs --client-id (a session is found again by its client id)"_s);
    } else {
        options.mqtt.clientId = u"ipmbqt-bridge-%1-%2-%3"_s.arg(QSysInfo::machineHostName())
                                        .arg(QCoreApplication::applicationPid())
                                        .arg(QRandomGenerator::global()->generate(), 8, 16, QLatin1Char('0'))
                                        .toUtf8();
    }
    options.mqtt.username = parser.value(u"username"_s).toUtf8();
    if (parser.isSet(u"password-file"_s)) {
        QFile file(parser.value(u"password-file"_s));
        if (!file.open(QIODevice::ReadOnly))
            return usage(u"--password-file: cannot read '%1': %2"_s.arg(file.fileName(), file.errorString()));
        options.mqtt.password = file.readLine(4096).trimmed();
    } else if (qEnvironmentVariableIsSet("IPMBQT_MQTT_PASSWORD")) {
        options.mqtt.password = qgetenv("IPMBQT_MQTT_PASSWORD");
    }
    if (!options.mqtt.password.isNull() && options.mqtt.username.isEmpty())
        return usage(u"a password needs --username"_s);
    options.mqtt.caFile = parser.value(u"cafile"_s).toUtf8();
    options.mqtt.certFile = parser.value(u"cert"_s).toUtf8();
    options.mqtt.keyFile = parser.value(u"key"_s).toUtf8();
    if ((!options.mqtt.certFile.isEmpty() || !options.mqtt.keyFile.isEmpty()) && options.mqtt.caFile.isEmpty())
        return usage(u"--cert and --key need --cafile (TLS)"_s);
    if (options.mqtt.certFile.isEmpty() != options.mqtt.keyFile.isEmpty())
        return usage(u"--cert and --key go together"_s);
    if (options.exportNames.isEmpty() && options.mqtt.subscriptions.isEmpty())
        return usage(u"nothing to bridge: give --export NAMES, --import FILTER, or both"_s);

    Bridge bridge(options);
    return bridge.run(parser);
}
