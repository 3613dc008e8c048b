// SPDX-License-Identifier: BSD-3-Clause
// The window of the worker-pool example. Each job is a request to Selector.unicast("worker"): the
// bus gives it to one of the workers (in turn), and the reply says which one did it. A worker
// that dies takes only its unanswered jobs with it; their promises reject at once, with the
// reason, and the other workers go on.
pragma ComponentBehavior: Bound
import QtQuick
import QtQuick.Controls
import QtQuick.Layouts
import IpmbQt

Window {
    id: root

    // Set by main.cpp.
    required property string busIdentifier
    required property var workers    // Workers (main.cpp): start() and kill(pid)

    // For main.cpp's automation hooks (tests/auto/workerpool).
    signal poolChanged(int count, string pids)
    signal jobSettled(int job, bool ok, int worker, string text)

    // The colour of a worker: hues spread by the golden ratio.
    function colourOf(pid: int): color {
        return Qt.hsla((pid * 0.618033988749895) % 1, 0.6, 0.45, 1)
    }

    // Sends `count` jobs at once; each tile fills in when its promise settles.
    function runJobs(count: int) {
        jobs.clear()
        for (let job = 0; job < count; ++job) {
            const n = 150000 + 10000 * job
            jobs.append({ job: job, state: "waiting", text: qsTr("n = %1").arg(n), worker: 0 })
            endpoint.request(Selector.unicast("worker"), { job: job, n: n }, 30000)
                .then(reply => {
                    const text = qsTr("%1 primes ≤ %2\n%3 ms").arg(reply.payload.primes).arg(n).arg(reply.payload.ms)
                    jobs.set(job, { state: "done", text: text, worker: reply.senderPid })
                    root.jobSettled(job, true, reply.senderPid, text.replace("\n", ", "))
                })
                .catch(error => {
                    // error.error is the reason as an Endpoint error value; error.message says it in words.
                    const text = error.error === Endpoint.PeerLeftError ? qsTr("Failed: its worker died")
                               : error.error === Endpoint.NoRouteError ? qsTr("Failed: no worker")
                               : error.error === Endpoint.TimeoutError ? qsTr("Failed: no answer in time")
                               : error.message
                    jobs.set(job, { state: "failed", text: text, worker: 0 })
                    root.jobSettled(job, false, 0, error.message)
                })
        }
    }

    width: 640
    height: 480
    visible: true
    title: qsTr("Worker pool")

    Endpoint {
        id: endpoint
        identifier: root.busIdentifier
        label: ["frontend"]
    }

    PeerModel {
        id: pool
        endpoint: endpoint
        filter: "worker"
        onCountChanged: {
            const pids = []
            for (let row = 0; row < count; ++row)
                pids.push(data(index(row, 0), PeerModel.PidRole))
            root.poolChanged(count, pids.join(","))
        }
    }

    ListModel { id: jobs }

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: 8
        spacing: 8

        RowLayout {
            Layout.fillWidth: true
            Label { text: qsTr("Workers:") }
            Repeater {
                model: pool
                delegate: Button {
                    required property int pid
                    text: qsTr("pid %1 ✕").arg(pid)
                    palette.buttonText: root.colourOf(pid)
                    onClicked: root.workers.kill(pid)   // as a crash would
                    ToolTip.visible: hovered
                    ToolTip.text: qsTr("Kill this worker")
                }
            }
            Item { Layout.fillWidth: true }
            Button {
                text: qsTr("Run 24 jobs")
                enabled: pool.count > 0
                onClicked: root.runJobs(24)
            }
        }

        GridView {
            id: grid
            Layout.fillWidth: true
            Layout.fillHeight: true
            clip: true
            cellWidth: width / 4
            cellHeight: 64
            model: jobs
            delegate: Rectangle {
                id: tile
                required property int job
                required property string state
                required property string text
                required property int worker
                width: grid.cellWidth - 6
                height: grid.cellHeight - 6
                radius: 4
                color: tile.state === "done" ? Qt.lighter(root.colourOf(tile.worker), 1.9)
                       : tile.state === "failed" ? "#fde2e2" : "#eeeeee"
                border.color: tile.state === "done" ? root.colourOf(tile.worker)
                              : tile.state === "failed" ? "firebrick" : "#cccccc"
                border.width: 2
                Label {
                    anchors.fill: parent
                    anchors.margins: 5
                    text: qsTr("Job %1").arg(tile.job)
                          + (tile.state === "done" ? qsTr(" · pid %1").arg(tile.worker) : "")
                          + "\n" + tile.text
                    wrapMode: Text.Wrap
                    elide: Text.ElideRight
                    font.pixelSize: 11
                    color: tile.state === "failed" ? "firebrick" : "black"
                }
            }
        }

        Label {
            Layout.fillWidth: true
            color: "grey"
            elide: Text.ElideRight
            text: endpoint.state === Endpoint.JoinedState
                  ? qsTr("%1 workers on %2. Each job is a request; the bus hands it to one worker.")
                        .arg(pool.count).arg(endpoint.identifier)
                  : endpoint.errorString
        }
    }
}
