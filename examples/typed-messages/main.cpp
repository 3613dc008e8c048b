// SPDX-License-Identifier: BSD-3-Clause
// Several message types on one endpoint, dispatched by type on the receiving side, and what a
// receiver sees when a type is unknown to it. Started without arguments, the program is the
// receiver: it joins a bus and starts itself again with --sender, which sends one message of each
// type, and one of a type that the receiver never registers.
#include <IpmbQt/IpmbEndpoint>

#include <QtCore/QCoreApplication>
#include <QtCore/QHash>
#include <QtCore/QProcess>
#include <QtCore/QTimer>

#include <functional>

using namespace Qt::StringLiterals;

// The message types: gadgets with QDataStream operators. In a real application they live in a
// header that the sender and the receiver both include.
struct ChatLine
{
    Q_GADGET
    Q_PROPERTY(QString text MEMBER text)
public:
    QString text;
    friend QDataStream &operator<<(QDataStream &s, const ChatLine &m) { return s << m.text; }
    friend QDataStream &operator>>(QDataStream &s, ChatLine &m) { return s >> m.text; }
};
Q_DECLARE_METATYPE(ChatLine)

struct Progress
{
    Q_GADGET
    Q_PROPERTY(int done MEMBER done)
    Q_PROPERTY(int total MEMBER total)
public:
    int done = 0;
    int total = 0;
    friend QDataStream &operator<<(QDataStream &s, const Progress &m)
    { return s << m.done << m.total; }
    friend QDataStream &operator>>(QDataStream &s, Progress &m) { return s >> m.done >> m.total; }
};
Q_DECLARE_METATYPE(Progress)

struct RenderRequest
{
    Q_GADGET
    Q_PROPERTY(int page MEMBER page)
    Q_PROPERTY(double scale MEMBER scale)
public:
    int page = 0;
    double scale = 1;
    friend QDataStream &operator<<(QDataStream &s, const RenderRequest &m)
    { return s << m.page << m.scale; }
    friend QDataStream &operator>>(QDataStream &s, RenderRequest &m)
    { return s >> m.page >> m.scale; }
};
Q_DECLARE_METATYPE(RenderRequest)

// As if a newer sender knew a type that this receiver was built without: it is never registered
// in the receiving process, so the receiver cannot decode it.
struct CancelRequest
{
    Q_GADGET
    Q_PROPERTY(int page MEMBER page)
public:
    int page = 0;
    friend QDataStream &operator<<(QDataStream &s, const CancelRequest &m) { return s << m.page; }
    friend QDataStream &operator>>(QDataStream &s, CancelRequest &m) { return s >> m.page; }
};
Q_DECLARE_METATYPE(CancelRequest)

// The receiver's dispatch table, keyed by meta-type id. Registering the type here is also what
// lets this process decode it: a payload names its type, and only registered names are found.
using Handler = std::function<QString(const QVariant &)>;
template <typename T, typename F>
void addHandler(QHash<int, Handler> &table, F handler)
{
    table.insert(qRegisterMetaType<T>(),
                 [handler](const QVariant &payload) { return handler(payload.value<T>()); });
}

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    const bool isSender = app.arguments().value(1) == "--sender"_L1;
    if (isSender && app.arguments().size() != 3) {
        qCritical("usage: typed-messages [--sender <bus identifier>]");
        return 2;
    }
    auto say = [isSender](const QString &text) {
        qInfo().noquote() << (isSender ? "[sender]  " : "[receiver]") << text;
    };
    auto fail = [&](const QString &why) {
        qCritical().noquote() << (isSender ? "[sender]  " : "[receiver]") << "FAILED:" << why;
        QCoreApplication::exit(1);
    };
    QTimer::singleShot(10000, &app, [&] { fail(u"timed out"_s); });

    IpmbEndpoint endpoint;
    // A bus of its own for every run (named after the receiver's pid), so that runs never meet.
    endpoint.setIdentifier(isSender ? app.arguments().value(2)
                                    : u"com.example.typed-messages.%1"_s.arg(app.applicationPid()));
    endpoint.setLabel({isSender ? u"sender"_s : u"receiver"_s});
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred,
                     [&] { fail(endpoint.errorString()); });

    if (isSender) {
        QObject::connect(&endpoint, &IpmbEndpoint::joined, [&] {
            const IpmbSelector receiver = IpmbSelector::unicast(IpmbLabelOp("receiver"));
            const QVariantList payloads = {
                QVariant::fromValue(ChatLine{u"hello from the sender"_s}),
                QVariant::fromValue(Progress{1, 3}),
                QVariant::fromValue(RenderRequest{7, 1.5}),
                QVariant::fromValue(Progress{3, 3}),
                QVariant::fromValue(CancelRequest{7}),
            };
            for (const QVariant &payload : payloads) {
                if (!endpoint.send(receiver, payload))
                    return;  // errorOccurred() says why
                say(u"sent a "_s + QLatin1StringView(payload.typeName()));
            }
            app.quit();  // leaving hands what is still queued to the bus first
        });
        endpoint.join();
        return app.exec();
    }

    QHash<int, Handler> handlers;
    addHandler<ChatLine>(handlers, [](const ChatLine &m) { return u"chat: "_s + m.text; });
    addHandler<Progress>(handlers, [](const Progress &m) {
        return u"progress: %1 of %2"_s.arg(m.done).arg(m.total);
    });
    addHandler<RenderRequest>(handlers, [](const RenderRequest &m) {
        return u"render: page %1 at scale %2"_s.arg(m.page).arg(m.scale);
    });

    // What the receiver must see, in this order: the bus keeps the order of one sender's messages.
    const QStringList expected = {u"chat: hello from the sender"_s, u"progress: 1 of 3"_s,
                                  u"render: page 7 at scale 1.5"_s, u"progress: 3 of 3"_s,
                                  u"unknown: PayloadUnknownType CancelRequest"_s};
    QStringList seen;
    bool senderDone = false;
    auto quitWhenDone = [&] {
        if (senderDone && seen == expected)
            app.quit();
    };

    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, [&](const IpmbMessage &message) {
        const QVariant payload = message.payload();
        const auto handler = handlers.constFind(payload.metaType().id());
        if (handler != handlers.cend())
            seen << (*handler)(payload);
        else  // the message arrives anyway, only without its payload
            seen << u"unknown: %1 %2"_s.arg(QVariant::fromValue(message.payloadStatus()).toString(),
                                            QLatin1StringView(message.payloadTypeName()));
        say(seen.last());
        if (message.payloadStatus() != IpmbMessage::PayloadOk)
            say(u"  "_s + message.payloadErrorString());
        if (seen.last() != expected.value(seen.size() - 1))
            return fail(u"expected \"%1\""_s.arg(expected.value(seen.size() - 1)));
        quitWhenDone();
    });

    QProcess sender;
    sender.setProcessChannelMode(QProcess::ForwardedChannels);  // one console shows both processes
    QObject::connect(&sender, &QProcess::finished, [&](int exitCode, QProcess::ExitStatus status) {
        if (status != QProcess::NormalExit || exitCode != 0)
            return fail(u"the sender exited with code %1"_s.arg(exitCode));
        senderDone = true;  // its messages may still be on their way: they were handed to the bus
        quitWhenDone();
    });
    QObject::connect(&endpoint, &IpmbEndpoint::joined, [&] {
        say(u"joined %1; starting the sender"_s.arg(endpoint.identifier()));
        sender.start(QCoreApplication::applicationFilePath(),
                     {u"--sender"_s, endpoint.identifier()});
    });
    endpoint.join();
    return app.exec();
}

#include "main.moc"
