// SPDX-License-Identifier: BSD-3-Clause
// A worker of the pool: joins the bus with the label "worker" and answers each request
// {job, n} with {job, n, primes, ms}: the number of primes up to n, counted in a QtConcurrent
// task, so that it works on several jobs at once and its thread stays free to take more.
#include <IpmbQt/IpmbEndpoint>

#include <QtConcurrent/QtConcurrentRun>
#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QElapsedTimer>

using namespace Qt::StringLiterals;

static int countPrimes(int n)
{
    int count = 0;
    for (int i = 2; i <= n; ++i) {
        bool prime = true;
        for (int d = 2; d * d <= i && prime; ++d)
            prime = i % d != 0;
        count += prime;
    }
    return count;
}

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(u"A worker of the worker-pool example."_s);
    parser.addHelpOption();
    parser.addOption({u"bus"_s, u"The bus to join (default: com.example.workerpool)."_s, u"ID"_s,
                      u"com.example.workerpool"_s});
    parser.process(app);

    IpmbEndpoint endpoint;
    endpoint.setIdentifier(parser.value(u"bus"_s));
    endpoint.setLabel({u"worker"_s});
    QObject::connect(&endpoint, &IpmbEndpoint::messageReceived, &app, [&endpoint](const IpmbMessage &request) {
        if (!request.isRequest())
            return;
        // The job runs on the global thread pool; reply() may be called from any thread.
        (void)QtConcurrent::run([&endpoint, request] {
            const QVariantMap job = request.payload().toMap();
            const int n = job.value(u"n"_s).toInt();
            QElapsedTimer timer;
            timer.start();
            const int primes = countPrimes(n);
            endpoint.reply(request, QVariantMap{{u"job"_s, job.value(u"job"_s)}, {u"n"_s, n},
                                                {u"primes"_s, primes}, {u"ms"_s, timer.elapsed()}});
        });
    });
    QObject::connect(&endpoint, &IpmbEndpoint::errorOccurred, &app, [&endpoint](IpmbEndpoint::Error error) {
        if (error != IpmbEndpoint::NoError)
            qWarning("worker: %s", qPrintable(endpoint.errorString()));
    });
    endpoint.join();
    return app.exec();
}
