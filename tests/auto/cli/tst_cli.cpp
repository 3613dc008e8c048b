// SPDX-License-Identifier: BSD-3-Clause
// The `ipmbqt` command (doc/tools.md; issue 14): its verbs peers, listen, send and request, run
// as a user runs them, against a bus of real helper processes (tests/auto/multiprocess/peer);
// its usage errors and exit codes; and the --help texts that doc/tools.md quotes.
#include "ipmbtestpeer.h"

#include <QtCore/qdir.h>
#include <QtCore/qfile.h>
#include <QtCore/qjsonarray.h>
#include <QtCore/qjsondocument.h>
#include <QtCore/qjsonobject.h>
#include <QtCore/qregularexpression.h>
#include <QtCore/qtemporaryfile.h>
#include <QtTest/qtest.h>

using namespace IpmbTest;
using namespace Qt::StringLiterals;

class tst_Cli : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void usageErrors_data();
    void usageErrors();
    void helpMatchesDoc();
    void peersTable();
    void peersJson();
    void peersOfNobodyFails();
    void listenPrintsWhatAHelperSends();
    void listenJsonLines();
    void listenTimesOut();
    void sendReachesHelper_data();
    void sendReachesHelper();
    void sendJsonRoundTrip();
    void sendMulticastReachesAll();
    void sendNeverToItself();
    void sendToNobodyFails();
    void sendWithTtlWaitsForReceiver();
    void requestPrintsReply();
    void requestFailures_data();
    void requestFailures();
    void monitorShowsTraffic();
    void monitorJsonAndFilter();
    void monitorIsInvisible();
    void monitorOfNobodyFails();
    void monitorEndsOnSigint();
};

// One run of the tool, to its end.
struct Result
{
    bool finished = false;
    int exitCode = -1;
    QByteArray out;
    QByteArray err;
};

// The tool started in the background (listen), read and waited for by the test.
class Tool
{
public:
    Tool() { m_process.setProcessChannelMode(QProcess::SeparateChannels); }
    ~Tool()
    {
        if (m_process.state() != QProcess::NotRunning) {
            m_process.kill();
            m_process.waitForFinished(5000);
        }
    }
    void start(const QStringList &arguments, const QByteArray &input = {})
    {
        m_process.start(QStringLiteral(IPMBQT_TOOL), arguments);
        if (m_process.waitForStarted(10000)) {
            m_process.write(input);
            m_process.closeWriteChannel();
        }
    }
    // Waits until it exits (at most `msecs`), running the event loop meanwhile: the commands the
    // test wrote to its helpers reach them only then.
    Result finish(int msecs = 30000)
    {
        Result result;
        result.finished = QTest::qWaitFor([this] { return m_process.state() == QProcess::NotRunning; }, msecs)
                && m_process.exitStatus() == QProcess::NormalExit;
        result.exitCode = m_process.exitCode();
        result.out = m_process.readAllStandardOutput();
        result.err = m_err + m_process.readAllStandardError();
        if (!result.err.isEmpty())
            qInfo("ipmbqt's stderr: %s", result.err.constData());
        return result;
    }

    // Waits until its stderr has `text` (monitor says when it is watching).
    bool waitForError(const QByteArray &text, int msecs = 20000)
    {
        return QTest::qWaitFor([&] {
            m_err += m_process.readAllStandardError();
            return m_err.contains(text) || m_process.state() == QProcess::NotRunning;
        }, msecs) && m_err.contains(text);
    }
    qint64 pid() const { return m_process.processId(); }

private:
    QProcess m_process;
    QByteArray m_err;
};

static Result run(const QStringList &arguments, const QByteArray &input = {}, int msecs = 30000)
{
    Tool tool;
    tool.start(arguments, input);
    return tool.finish(msecs);
}

// The lines of a run's output, without the empty one after the last newline.
static QByteArrayList lines(const QByteArray &output)
{
    QByteArrayList list = output.split('\n');
    if (!list.isEmpty() && list.constLast().isEmpty())
        list.removeLast();
    return list;
}

// The value= of a helper's "received" line: it may hold spaces, and " from=" follows it.
static QByteArray receivedValue(const QByteArray &line)
{
    const qsizetype from = line.indexOf(" value=") + 7;
    return line.mid(from, line.indexOf(" from=", from) - from);
}

// Waits until `watcher` (a helper started with --watch-peers) reports an endpoint whose label
// starts with `label`: a tool's endpoint has joined (send and request add a name of their own).
static bool waitForJoin(Peer &watcher, const QByteArray &label)
{
    for (int i = 0; i < 10; ++i) {
        const QByteArray line = watcher.waitFor("peer-joined");
        if (line.isEmpty())
            return false;
        if (field(line, "label").startsWith(label))
            return true;
    }
    return false;
}

void tst_Cli::usageErrors_data()
{
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<QByteArray>("stderrContains");
    const QString bus = uniqueBusName();
    QTest::newRow("no verb") << QStringList() << 2 << QByteArray("ipmbqt: no verb given");
    QTest::newRow("unknown verb") << QStringList{u"frob"_s} << 2 << QByteArray("ipmbqt: unknown verb 'frob'");
    QTest::newRow("unknown option") << QStringList{u"peers"_s, u"--bus"_s, bus, u"--frob"_s} << 2
                                    << QByteArray("ipmbqt peers: Unknown option 'frob'");
    QTest::newRow("extra argument") << QStringList{u"peers"_s, u"--bus"_s, bus, u"extra"_s} << 2
                                    << QByteArray("ipmbqt peers: unexpected argument 'extra'");
    QTest::newRow("missing --bus") << QStringList{u"peers"_s} << 2 << QByteArray("ipmbqt peers: --bus ID is required");
    QTest::newRow("listen without --label") << QStringList{u"listen"_s, u"--bus"_s, bus} << 2
                                            << QByteArray("ipmbqt listen: --label L[,L2] is required");
    QTest::newRow("listen bad --count") << QStringList{u"listen"_s, u"--bus"_s, bus, u"--label"_s, u"x"_s,
                                                       u"--count"_s, u"many"_s}
                                        << 2 << QByteArray("ipmbqt listen: --count wants a whole number");
    QTest::newRow("listen --echo and --reply-text")
            << QStringList{u"listen"_s, u"--bus"_s, bus, u"--label"_s, u"x"_s, u"--echo"_s, u"--reply-text"_s, u"t"_s}
            << 2 << QByteArray("exclude each other");
    QTest::newRow("send without --to") << QStringList{u"send"_s, u"--bus"_s, bus, u"--text"_s, u"x"_s} << 2
                                       << QByteArray("ipmbqt send: --to LABEL-OP is required");
    QTest::newRow("send bad label op") << QStringList{u"send"_s, u"--bus"_s, bus, u"--to"_s, u"a &&"_s, u"--text"_s, u"x"_s}
                                       << 2 << QByteArray("ipmbqt send: bad label op 'a &&': expected an operand");
    QTest::newRow("send without payload") << QStringList{u"send"_s, u"--bus"_s, bus, u"--to"_s, u"a"_s} << 2
                                          << QByteArray("give exactly one of --text, --json, --file");
    QTest::newRow("send two payloads")
            << QStringList{u"send"_s, u"--bus"_s, bus, u"--to"_s, u"a"_s, u"--text"_s, u"x"_s, u"--json"_s, u"1"_s}
            << 2 << QByteArray("give exactly one of --text, --json, --file");
    QTest::newRow("send bad JSON") << QStringList{u"send"_s, u"--bus"_s, bus, u"--to"_s, u"a"_s, u"--json"_s, u"{bad"_s}
                                   << 2 << QByteArray("ipmbqt send: --json: not JSON");
    QTest::newRow("send missing file")
            << QStringList{u"send"_s, u"--bus"_s, bus, u"--to"_s, u"a"_s, u"--file"_s, u"/nonexistent/x"_s} << 2
            << QByteArray("ipmbqt send: --file: cannot read '/nonexistent/x'");
    QTest::newRow("send bad --ttl")
            << QStringList{u"send"_s, u"--bus"_s, bus, u"--to"_s, u"a"_s, u"--text"_s, u"x"_s, u"--ttl"_s, u"-5"_s} << 2
            << QByteArray("--ttl wants a whole number");
    QTest::newRow("request bad label op")
            << QStringList{u"request"_s, u"--bus"_s, bus, u"--to"_s, u"(a"_s, u"--text"_s, u"x"_s} << 2
            << QByteArray("ipmbqt request: bad label op '(a'");
    QTest::newRow("request bad --timeout")
            << QStringList{u"request"_s, u"--bus"_s, bus, u"--to"_s, u"a"_s, u"--text"_s, u"x"_s, u"--timeout"_s, u"soon"_s}
            << 2 << QByteArray("--timeout wants a whole number");
}

// Every usage error: exit 2, "ipmbqt <verb>: why" on stderr, nothing on stdout, and no bus joined
// (each row would otherwise need a bus; they all use one that nobody is on).
void tst_Cli::usageErrors()
{
    QFETCH(QStringList, arguments);
    QFETCH(int, exitCode);
    QFETCH(QByteArray, stderrContains);
    const Result result = run(arguments);
    QVERIFY(result.finished);
    QCOMPARE(result.exitCode, exitCode);
    QVERIFY2(result.err.contains(stderrContains), result.err.constData());
    QCOMPARE(lines(result.err).size(), 1);
    QCOMPARE(result.out, QByteArray());
}

// Each fenced block in doc/tools.md that starts with "Usage: ipmbqt" is the --help of the verb it
// names ("VERB": the command's own --help); the binary must print exactly that. A verb whose
// section has no such block yet (monitor, bridge) is skipped; these four must have one.
void tst_Cli::helpMatchesDoc()
{
    QFile doc(QStringLiteral(IPMBQT_DOC_DIR) + u"/tools.md"_s);
    QVERIFY2(doc.open(QIODevice::ReadOnly), qPrintable(doc.fileName()));
    const QByteArrayList text = doc.readAll().split('\n');
    QSet<QByteArray> verbs;
    for (qsizetype i = 0; i < text.size(); ++i) {
        if (!text.at(i).startsWith("```") || !text.value(i + 1).startsWith("Usage: ipmbqt "))
            continue;
        const QByteArray verb = text.at(i + 1).split(' ').value(2);
        QByteArray documented;
        for (++i; i < text.size() && !text.at(i).startsWith("```"); ++i)
            documented += text.at(i) + '\n';
        const QStringList arguments = verb == "VERB" ? QStringList{u"--help"_s}
                                                     : QStringList{QString::fromLatin1(verb), u"--help"_s};
        const Result result = run(arguments);
        QVERIFY2(result.finished && result.exitCode == 0 && result.err.isEmpty(), verb.constData());
        if (result.out != documented)
            qWarning("doc/tools.md: the help of '%s' differs from the binary's", verb.constData());
        QCOMPARE(QString::fromUtf8(result.out), QString::fromUtf8(documented));
        verbs.insert(verb);
    }
    for (const char *verb : {"VERB", "peers", "listen", "send", "request", "monitor", "bridge"})
        QVERIFY2(verbs.contains(verb), verb);
}

// The table lists the helpers (and not the command's own endpoint) with their ids, pids, labels
// and which one hosts the controller.
void tst_Cli::peersTable()
{
    Bus bus;
    Peer sensor, display;
    QVERIFY(bus.join({{sensor, "sensor,t1"}, {display, "display"}}));
    const Result result = run({u"peers"_s, u"--bus"_s, bus.name});
    QVERIFY(result.finished);
    QCOMPARE(result.exitCode, 0);
    QCOMPARE(result.err, QByteArray());
    const QByteArrayList table = lines(result.out);
    QCOMPARE(table.size(), 3);
    QCOMPARE(table.at(0).simplified(), QByteArray("ID PID UID CONTROLLER JOINED LABEL"));
    const QRegularExpression row(u"^(\\d+) +(\\d+) +(\\d+) +(yes|no) +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +(\\S+)$"_s);
    for (const auto &[index, peer, controller, label] :
         {std::tuple{1, &sensor, "yes", "sensor,t1"}, std::tuple{2, &display, "no", "display"}}) {
        const QRegularExpressionMatch match = row.match(QString::fromUtf8(table.at(index)));
        QVERIFY2(match.hasMatch(), table.at(index).constData());
        QCOMPARE(match.captured(1).toUInt(), peer->id());
        QCOMPARE(match.captured(2).toLongLong(), peer->pid());
        QCOMPARE(match.captured(4), QString::fromLatin1(controller));
        QCOMPARE(match.captured(5), QString::fromLatin1(label));
    }
    const Result bare = run({u"peers"_s, u"--bus"_s, bus.name, u"--no-header"_s});
    QCOMPARE(bare.exitCode, 0);
    QCOMPARE(lines(bare.out).size(), 2);
    QVERIFY(bare.out.startsWith(QByteArray::number(sensor.id()) + ' '));
}

void tst_Cli::peersJson()
{
    Bus bus;
    Peer sensor, display, other;
    QVERIFY(bus.join({{sensor, "sensor,t1"}, {display, "display"}, {other, "other,x,y"}}));
    const Result result = run({u"peers"_s, u"--bus"_s, bus.name, u"--json"_s});
    QVERIFY(result.finished);
    QCOMPARE(result.exitCode, 0);
    QCOMPARE(lines(result.out).size(), 1);
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(result.out, &error);
    QVERIFY2(document.isArray(), qPrintable(error.errorString()));
    const QJsonArray peers = document.array();
    QCOMPARE(peers.size(), 3);
    Peer *expected[] = {&sensor, &display, &other};
    const QStringList labels[] = {{u"sensor"_s, u"t1"_s}, {u"display"_s}, {u"other"_s, u"x"_s, u"y"_s}};
    for (int i = 0; i < 3; ++i) {
        const QJsonObject peer = peers.at(i).toObject();
        QCOMPARE(peer.value(u"id"_s).toInteger(), qint64(expected[i]->id()));
        QCOMPARE(peer.value(u"pid"_s).toInteger(), expected[i]->pid());
        QCOMPARE(peer.value(u"uid"_s).toInteger(), qint64(::getuid()));
        QCOMPARE(peer.value(u"controller"_s).toBool(), i == 0);
        QCOMPARE(peer.value(u"label"_s).toVariant().toStringList(), labels[i]);
        const QDateTime joinedAt = QDateTime::fromString(peer.value(u"joinedAt"_s).toString(), Qt::ISODateWithMs);
        QVERIFY(joinedAt.isValid());
        QVERIFY(qAbs(joinedAt.secsTo(QDateTime::currentDateTimeUtc())) < 120);
    }
}

// listen prints one line per message, with the sender, selector, type and payload, and exits 0
// after --count messages.
void tst_Cli::listenPrintsWhatAHelperSends()
{
    Bus bus;
    Peer sensor;
    QVERIFY(bus.join(sensor, u"sensor"_s, {u"--watch-peers"_s}));
    Tool listen;
    listen.start({u"listen"_s, u"--bus"_s, bus.name, u"--label"_s, u"display,screen"_s, u"--count"_s, u"3"_s});
    QVERIFY(waitForJoin(sensor, "display,screen"));
    sensor.command("send unicast display 0 str hello");
    sensor.command("send multicast screen&&!nobody 0 int 42");
    sensor.command("send unicast display 0 blob 3");
    const Result result = listen.finish();
    QVERIFY(result.finished);
    QCOMPARE(result.exitCode, 0);
    QCOMPARE(result.err, QByteArray());
    const QByteArrayList printed = lines(result.out);
    QCOMPARE(printed.size(), 3);
    const QByteArray from = " from " + QByteArray::number(sensor.id()) + " [sensor] pid " + QByteArray::number(sensor.pid());
    const QRegularExpression time(u"^\\d\\d:\\d\\d:\\d\\d\\.\\d\\d\\d from "_s);
    for (const QByteArray &line : printed) {
        QVERIFY2(line.contains(from), line.constData());
        QVERIFY2(time.match(QString::fromUtf8(line)).hasMatch(), line.constData());
    }
    QVERIFY2(printed.at(0).endsWith(" unicast 'display' QString: hello"), printed.at(0).constData());
    QVERIFY2(printed.at(1).endsWith(" multicast 'screen && !nobody' int: 42"), printed.at(1).constData());
    QVERIFY2(printed.at(2).endsWith(" unicast 'display' QByteArray: bbb"), printed.at(2).constData());
}

// --json: one JSON object per line, with the payload as JSON, binary bytes in base64, and a
// request marked.
void tst_Cli::listenJsonLines()
{
    Bus bus;
    Peer sensor;
    QVERIFY(bus.join(sensor, u"sensor"_s, {u"--watch-peers"_s}));
    Tool listen;
    listen.start({u"listen"_s, u"--bus"_s, bus.name, u"--label"_s, u"display"_s, u"--json"_s, u"--count"_s, u"4"_s});
    QVERIFY(waitForJoin(sensor, "display"));
    sensor.command("send unicast display 0 str hello");
    sensor.command("send unicast display 0 int 42");
    sensor.command("send unicast display 0 bytes 16"); // binary
    // A request, from the tool itself (the helper does not send requests). listen does not answer
    // it without --reply-text or --echo, and exits after it, its 4th message: the requester hears
    // that it left.
    const Result request = run({u"request"_s, u"--bus"_s, bus.name, u"--to"_s, u"display"_s, u"--text"_s, u"q?"_s,
                                u"--timeout"_s, u"20000"_s});
    QCOMPARE(request.exitCode, 1);
    QCOMPARE(request.err, QByteArray("ipmbqt request: the endpoint that got the request left before it replied\n"));
    const Result result = listen.finish();
    QVERIFY(result.finished);
    QCOMPARE(result.exitCode, 0);
    const QByteArrayList printed = lines(result.out);
    QCOMPARE(printed.size(), 4);
    QList<QJsonObject> objects;
    for (const QByteArray &line : printed) {
        QJsonParseError error;
        const QJsonDocument document = QJsonDocument::fromJson(line, &error);
        QVERIFY2(document.isObject(), qPrintable(error.errorString() + u": "_s + QString::fromUtf8(line)));
        objects.append(document.object());
    }
    for (int i = 0; i < 3; ++i) {
        const QJsonObject sender = objects.at(i).value(u"sender"_s).toObject();
        QCOMPARE(sender.value(u"id"_s).toInteger(), qint64(sensor.id()));
        QCOMPARE(sender.value(u"pid"_s).toInteger(), sensor.pid());
        QCOMPARE(sender.value(u"label"_s).toArray(), QJsonArray{u"sensor"_s});
        QCOMPARE(objects.at(i).value(u"mode"_s).toString(), u"unicast"_s);
        QCOMPARE(objects.at(i).value(u"to"_s).toString(), u"display"_s);
        QCOMPARE(objects.at(i).value(u"request"_s).toBool(), false);
        QVERIFY(QDateTime::fromString(objects.at(i).value(u"time"_s).toString(), Qt::ISODateWithMs).isValid());
    }
    QCOMPARE(objects.at(0).value(u"type"_s).toString(), u"QString"_s);
    QCOMPARE(objects.at(0).value(u"payload"_s), QJsonValue(u"hello"_s));
    QCOMPARE(objects.at(1).value(u"type"_s).toString(), u"int"_s);
    QCOMPARE(objects.at(1).value(u"payload"_s), QJsonValue(42));
    QCOMPARE(objects.at(2).value(u"type"_s).toString(), u"QByteArray"_s);
    QCOMPARE(objects.at(2).value(u"encoding"_s).toString(), u"base64"_s);
    const QByteArray bytes = QByteArray::fromBase64(objects.at(2).value(u"payload"_s).toString().toLatin1());
    QCOMPARE(bytes.size(), 16);
    QVERIFY(bytes.startsWith("SEQ!"));
    QCOMPARE(objects.at(3).value(u"request"_s).toBool(), true);
    QCOMPARE(objects.at(3).value(u"payload"_s), QJsonValue(u"q?"_s));
}

void tst_Cli::listenTimesOut()
{
    Bus bus;
    Peer sensor;
    QVERIFY(bus.join(sensor, u"sensor"_s));
    const Result result = run({u"listen"_s, u"--bus"_s, bus.name, u"--label"_s, u"display"_s, u"--count"_s, u"2"_s,
                               u"--timeout"_s, u"300"_s});
    QVERIFY(result.finished);
    QCOMPARE(result.exitCode, 1);
    QCOMPARE(result.out, QByteArray());
    QVERIFY2(result.err.contains("ipmbqt listen: timed out after 300 ms with 0 of 2 messages"), result.err.constData());
}

void tst_Cli::sendReachesHelper_data()
{
    QTest::addColumn<QStringList>("payload");
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<QByteArray>("type");
    QTest::addColumn<QByteArray>("value");
    QTest::newRow("text") << QStringList{u"--text"_s, u"hello world"_s} << QByteArray() << QByteArray("QString")
                          << QByteArray("hello world");
    QTest::newRow("json string") << QStringList{u"--json"_s, u"\"hi\""_s} << QByteArray() << QByteArray("QJsonValue")
                                 << QByteArray("hi");
    // The helper prints no value for these; sendJsonRoundTrip checks them.
    QTest::newRow("json object") << QStringList{u"--json"_s, u"{\"a\":1}"_s} << QByteArray()
                                 << QByteArray("QJsonObject") << QByteArray();
    QTest::newRow("json array") << QStringList{u"--json"_s, u"[1,2]"_s} << QByteArray() << QByteArray("QJsonArray")
                                << QByteArray();
    QTest::newRow("stdin") << QStringList{u"--file"_s, u"-"_s} << QByteArray("bin\0ary\xff", 7)
                           << QByteArray("QByteArray") << QByteArray("bytes:7");
    QTest::newRow("file") << QStringList{u"--file"_s, u"FILE"_s} << QByteArray(1000, 'f') << QByteArray("QByteArray")
                          << QByteArray("bytes:1000");
}

// Each payload option reaches a helper with its type and value; send prints nothing and exits 0.
void tst_Cli::sendReachesHelper()
{
    QFETCH(QStringList, payload);
    QFETCH(QByteArray, input);
    QFETCH(QByteArray, type);
    QFETCH(QByteArray, value);
    QTemporaryFile file;
    if (payload.contains(u"FILE"_s)) {
        QVERIFY(file.open());
        file.write(input);
        file.close();
        payload.replace(payload.indexOf(u"FILE"_s), file.fileName());
        input.clear();
    }
    Bus bus;
    Peer sensor, display;
    QVERIFY(bus.join({{sensor, "sensor"}, {display, "display"}}));
    const Result result = run(QStringList{u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"display"_s} + payload, input);
    QVERIFY(result.finished);
    QCOMPARE(result.err, QByteArray());
    QCOMPARE(result.exitCode, 0);
    QCOMPARE(result.out, QByteArray());
    const QByteArray line = display.waitFor("received");
    QCOMPARE(field(line, "type"), type);
    QCOMPARE(field(line, "status"), QByteArray("PayloadOk"));
    if (!value.isEmpty())
        QCOMPARE(receivedValue(line), value);
    QVERIFY(!sensor.hasPrinted("received"));
}

// JSON in, JSON out: send --json to listen --json gives back the same value, as the type it was.
void tst_Cli::sendJsonRoundTrip()
{
    const QByteArray values[] = {R"({"a":1,"b":[true,null,"x"],"c":{"d":1.5}})", "[1,\"two\",3.25]", "\"text\"", "17",
                                 "false", "null"};
    const QByteArray types[] = {"QJsonObject", "QJsonArray", "QJsonValue", "QJsonValue", "QJsonValue", "QJsonValue"};
    Bus bus;
    Peer sensor;
    QVERIFY(bus.join(sensor, u"sensor"_s, {u"--watch-peers"_s}));
    Tool listen;
    listen.start({u"listen"_s, u"--bus"_s, bus.name, u"--label"_s, u"display"_s, u"--json"_s, u"--count"_s, u"6"_s});
    QVERIFY(waitForJoin(sensor, "display"));
    for (const QByteArray &value : values) {
        const Result sent = run({u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"display"_s, u"--json"_s,
                                 QString::fromUtf8(value)});
        QCOMPARE(sent.exitCode, 0);
    }
    const Result result = listen.finish();
    QCOMPARE(result.exitCode, 0);
    const QByteArrayList printed = lines(result.out);
    QCOMPARE(printed.size(), 6);
    for (int i = 0; i < 6; ++i) {
        const QJsonObject line = QJsonDocument::fromJson(printed.at(i)).object();
        QCOMPARE(line.value(u"type"_s).toString().toLatin1(), types[i]);
        const QJsonValue expected = QJsonDocument::fromJson("[" + values[i] + "]").array().first();
        QCOMPARE(line.value(u"payload"_s), expected);
    }
}

void tst_Cli::sendMulticastReachesAll()
{
    Bus bus;
    Peer a, b, c;
    QVERIFY(bus.join({{a, "display,left"}, {b, "display,right"}, {c, "sensor"}}));
    const Result result = run({u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"display"_s, u"--multicast"_s,
                               u"--text"_s, u"to all"_s});
    QCOMPARE(result.exitCode, 0);
    for (Peer *peer : {&a, &b})
        QCOMPARE(receivedValue(peer->waitFor("received")), QByteArray("to all"));
    // c got nothing: a message to it after the multicast arrives first if it did.
    QCOMPARE(run({u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"sensor"_s, u"--text"_s, u"last"_s}).exitCode, 0);
    QCOMPARE(receivedValue(c.waitFor("received")), QByteArray("last"));
}

// A label op that the command's own endpoint matches ("!display") still goes to another.
void tst_Cli::sendNeverToItself()
{
    Bus bus;
    Peer display, sensor;
    QVERIFY(bus.join({{display, "display"}, {sensor, "sensor"}}));
    for (int i = 0; i < 3; ++i) {
        const Result result = run({u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"!display"_s, u"--text"_s,
                                   u"m%1"_s.arg(i)});
        QCOMPARE(result.exitCode, 0);
        QCOMPARE(receivedValue(sensor.waitFor("received")), u"m%1"_s.arg(i).toUtf8());
    }
    QCOMPARE(run({u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"ipmbqt-send"_s, u"--text"_s, u"x"_s}).exitCode, 1);
    QVERIFY(!display.hasPrinted("received"));
}

void tst_Cli::sendToNobodyFails()
{
    Bus bus;
    Peer display;
    QVERIFY(bus.join(display, u"display"_s));
    for (const char *mode : {"--text", "--multicast"}) {
        QStringList arguments {u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"nobody || ghost"_s, u"--text"_s, u"x"_s};
        if (qstrcmp(mode, "--multicast") == 0)
            arguments.append(u"--multicast"_s);
        const Result result = run(arguments);
        QVERIFY(result.finished);
        QCOMPARE(result.exitCode, 1);
        QCOMPARE(result.out, QByteArray());
        QCOMPARE(result.err, QByteArray("ipmbqt send: no endpoint matches 'nobody || ghost'\n"));
    }
    // On a bus with nobody on it (the command hosts the controller itself), too.
    const Result empty = run({u"send"_s, u"--bus"_s, uniqueBusName(), u"--to"_s, u"display"_s, u"--text"_s, u"x"_s});
    QCOMPARE(empty.exitCode, 1);
    QCOMPARE(empty.err, QByteArray("ipmbqt send: no endpoint matches 'display'\n"));
    QVERIFY(!display.hasPrinted("received"));
}

// With --ttl, send waits until a receiver joins and gets the message, or the ttl runs out.
void tst_Cli::sendWithTtlWaitsForReceiver()
{
    Bus bus;
    Peer sensor;
    QVERIFY(bus.join(sensor, u"sensor"_s, {u"--watch-peers"_s}));
    Tool send;
    send.start({u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"late"_s, u"--ttl"_s, u"20000"_s, u"--text"_s,
                u"waited"_s});
    QVERIFY(waitForJoin(sensor, "ipmbqt-send"));
    Peer late;
    QVERIFY(bus.join(late, u"late"_s));
    const Result result = send.finish();
    QVERIFY(result.finished);
    QCOMPARE(result.exitCode, 0);
    QCOMPARE(receivedValue(late.waitFor("received")), QByteArray("waited"));

    const Result expired = run({u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"never"_s, u"--ttl"_s, u"300"_s,
                                u"--text"_s, u"x"_s});
    QVERIFY(expired.finished);
    QCOMPARE(expired.exitCode, 1);
    QCOMPARE(expired.err, QByteArray("ipmbqt send: no endpoint matches 'never' within 300 ms\n"));
}

// request against `ipmbqt listen --reply-text` and `--echo`: the reply's payload on stdout, or
// the whole reply as JSON.
void tst_Cli::requestPrintsReply()
{
    Bus bus;
    Peer sensor;
    QVERIFY(bus.join(sensor, u"sensor"_s, {u"--watch-peers"_s}));
    Tool worker, echo;
    worker.start({u"listen"_s, u"--bus"_s, bus.name, u"--label"_s, u"worker"_s, u"--reply-text"_s, u"pong"_s,
                  u"--count"_s, u"2"_s});
    QVERIFY(waitForJoin(sensor, "worker"));
    echo.start({u"listen"_s, u"--bus"_s, bus.name, u"--label"_s, u"echo"_s, u"--echo"_s, u"--count"_s, u"1"_s});
    QVERIFY(waitForJoin(sensor, "echo"));

    const Result text = run({u"request"_s, u"--bus"_s, bus.name, u"--to"_s, u"worker"_s, u"--text"_s, u"ping"_s});
    QVERIFY(text.finished);
    QCOMPARE(text.exitCode, 0);
    QCOMPARE(text.out, QByteArray("pong\n"));
    QCOMPARE(text.err, QByteArray());

    const Result json = run({u"request"_s, u"--bus"_s, bus.name, u"--to"_s, u"worker"_s, u"--text"_s, u"ping"_s,
                             u"--json-output"_s});
    QCOMPARE(json.exitCode, 0);
    const QJsonObject reply = QJsonDocument::fromJson(json.out).object();
    QCOMPARE(reply.value(u"payload"_s), QJsonValue(u"pong"_s));
    QCOMPARE(reply.value(u"type"_s), QJsonValue(u"QString"_s));
    QCOMPARE(reply.value(u"sender"_s).toObject().value(u"label"_s).toArray(), QJsonArray{u"worker"_s});

    const Result echoed = run({u"request"_s, u"--bus"_s, bus.name, u"--to"_s, u"echo"_s, u"--json"_s,
                               u"{\"q\":[1,2]}"_s});
    QCOMPARE(echoed.exitCode, 0);
    QCOMPARE(echoed.out, QByteArray("{\"q\":[1,2]}\n"));

    const Result served = worker.finish();
    QCOMPARE(served.exitCode, 0);
    const QByteArrayList printed = lines(served.out);
    QCOMPARE(printed.size(), 2);
    QVERIFY2(printed.at(0).endsWith(" request 'worker' QString: ping"), printed.at(0).constData());
    QCOMPARE(echo.finish().exitCode, 0);
}

void tst_Cli::requestFailures_data()
{
    QTest::addColumn<QString>("to");
    QTest::addColumn<QStringList>("options");
    QTest::addColumn<QByteArray>("error");
    QTest::newRow("no route") << u"nobody"_s << QStringList() << QByteArray("ipmbqt request: no endpoint matches 'nobody'\n");
    QTest::newRow("no route after ttl") << u"nobody"_s << QStringList{u"--ttl"_s, u"200"_s}
                                        << QByteArray("ipmbqt request: no endpoint matches 'nobody'\n");
    // The helper takes requests as messages and never replies.
    QTest::newRow("timeout") << u"mute"_s << QStringList{u"--timeout"_s, u"300"_s}
                             << QByteArray("ipmbqt request: no reply within 300 ms\n");
}

void tst_Cli::requestFailures()
{
    QFETCH(QString, to);
    QFETCH(QStringList, options);
    QFETCH(QByteArray, error);
    Bus bus;
    Peer mute;
    QVERIFY(bus.join(mute, u"mute"_s));
    const Result result = run(QStringList{u"request"_s, u"--bus"_s, bus.name, u"--to"_s, to, u"--text"_s, u"q"_s}
                              + options);
    QVERIFY(result.finished);
    QCOMPARE(result.exitCode, 1);
    QCOMPARE(result.out, QByteArray());
    QCOMPARE(result.err, error);
}

void tst_Cli::peersOfNobodyFails()
{
    const Result result = run({u"peers"_s, u"--bus"_s, uniqueBusName()});
    QCOMPARE(result.exitCode, 1);
    QVERIFY2(result.err.contains("Nobody is on the bus"), result.err);
    QVERIFY(result.out.isEmpty());
}

// ipmbqt monitor: a copy of each message, with its receiver; monitors are in nobody's way.
void tst_Cli::monitorShowsTraffic()
{
    Bus bus;
    Peer controller, receiver, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {receiver, "b"}, {sender, "a"}}));
    Tool monitor;
    monitor.start({u"monitor"_s, u"--bus"_s, bus.name, u"--count"_s, u"3"_s});
    QVERIFY(monitor.waitForError("ipmbqt monitor: watching bus"));
    sender.command("send unicast b 0 str hello");
    sender.command("send unicast b 0 int 7");
    sender.command("send unicast nobody 0 str lost");
    const Result result = monitor.finish();
    QVERIFY(result.finished);
    QCOMPARE(result.exitCode, 0);
    const QByteArrayList shown = lines(result.out);
    QCOMPARE(shown.size(), 3);
    const QByteArray from = QByteArray::number(sender.id()) + " [a] -> ";
    QVERIFY2(shown.at(0).contains(from + QByteArray::number(receiver.id()) + " [b] unicast 'b' via "), shown.at(0));
    QVERIFY2(shown.at(0).endsWith(": QString 18 B: hello"), shown.at(0));
    QVERIFY2(shown.at(1).contains(from + QByteArray::number(receiver.id()) + " [b] unicast 'b' via ")
                     && shown.at(1).endsWith(": int 8 B: 7"), shown.at(1));
    QVERIFY2(shown.at(2).contains(from + "(nobody) unicast 'nobody' via controller: QString 16 B: lost"), shown.at(2));
    // It received nothing itself: the helpers got what was sent to them, and only that.
    QVERIFY(!receiver.waitFor("received").isEmpty());
}

void tst_Cli::monitorJsonAndFilter()
{
    Bus bus;
    Peer controller, b, c, sender;
    QVERIFY(bus.join({{controller, "ctl"}, {b, "b"}, {c, "c"}, {sender, "a"}}));
    Tool monitor;
    monitor.start({u"monitor"_s, u"--bus"_s, bus.name, u"--json"_s, u"--filter"_s, u"c"_s, u"--count"_s, u"1"_s});
    QVERIFY(monitor.waitForError("watching bus"));
    sender.command("send unicast b 0 str not-shown");
    QVERIFY(!b.waitFor("received").isEmpty());
    sender.command("send unicast c 0 smileys 3000");  // 6,000 bytes: the copy has the first 4 KiB
    const Result result = monitor.finish();
    QCOMPARE(result.exitCode, 0);
    QCOMPARE(lines(result.out).size(), 1);
    const QJsonObject json = QJsonDocument::fromJson(result.out).object();
    QCOMPARE(json.value(u"sender"_s).toObject().value(u"label"_s).toArray(), QJsonArray{u"a"_s});
    QCOMPARE(json.value(u"target"_s).toObject().value(u"id"_s).toInteger(), qint64(c.id()));
    QCOMPARE(json.value(u"target"_s).toObject().value(u"label"_s).toArray(), QJsonArray{u"c"_s});
    QCOMPARE(json.value(u"to"_s).toString(), u"c"_s);
    QCOMPARE(json.value(u"kind"_s).toString(), u"unicast"_s);
    QCOMPARE(json.value(u"type"_s).toString(), u"QString"_s);
    QCOMPARE(json.value(u"size"_s).toInteger(), 1 + 7 + 6000);
    QCOMPARE(json.value(u"deliveries"_s).toInteger(), 1);
    QVERIFY(json.value(u"truncated"_s).toBool());
    QCOMPARE(json.value(u"payload"_s).toString(), QString(2044, QChar(0x263A)) + QChar(0x2026));
}

// A monitor is no receiver and no peer: sending to its label reaches nobody, peers lists it not.
void tst_Cli::monitorIsInvisible()
{
    Bus bus;
    Peer controller;
    QVERIFY(bus.join({{controller, "ctl"}}));
    Tool monitor;
    monitor.start({u"monitor"_s, u"--bus"_s, bus.name, u"--label"_s, u"spy"_s});
    QVERIFY(monitor.waitForError("watching bus"));
    const Result peers = run({u"peers"_s, u"--bus"_s, bus.name, u"--json"_s});
    QCOMPARE(peers.exitCode, 0);
    QCOMPARE(QJsonDocument::fromJson(peers.out).array().size(), 1);  // the helper only
    const Result send = run({u"send"_s, u"--bus"_s, bus.name, u"--to"_s, u"spy"_s, u"--text"_s, u"psst"_s});
    QCOMPARE(send.exitCode, 1);
    QVERIFY2(send.err.contains("no endpoint matches 'spy'"), send.err);
}

void tst_Cli::monitorOfNobodyFails()
{
    const Result result = run({u"monitor"_s, u"--bus"_s, uniqueBusName()});
    QCOMPARE(result.exitCode, 1);
    QVERIFY2(result.err.contains("Nobody is on the bus"), result.err);
    QVERIFY(result.out.isEmpty());
}

void tst_Cli::monitorEndsOnSigint()
{
    Bus bus;
    Peer controller;
    QVERIFY(bus.join({{controller, "ctl"}}));
    Tool monitor;
    monitor.start({u"monitor"_s, u"--bus"_s, bus.name});
    QVERIFY(monitor.waitForError("watching bus"));
    ::kill(pid_t(monitor.pid()), SIGINT);
    const Result result = monitor.finish(10000);
    QVERIFY(result.finished);  // a normal exit, not death by the signal
    QCOMPARE(result.exitCode, 0);
}

QTEST_MAIN(tst_Cli)
#include "tst_cli.moc"
