// SPDX-License-Identifier: BSD-3-Clause
// PeerModel, Endpoint.peers() and peerJoined/peerLeft, and Endpoint.request()'s Promise, against
// the echo peer (label "echo", a C++ process) and endpoints that this test creates.
import QtQuick
import QtTest
import IpmbQt
import IpmbQtTest

TestCase {
    id: testCase
    name: "PresenceAndRequests"
    when: endpoint.state === Endpoint.JoinedState

    Endpoint {
        id: endpoint
        identifier: TestBus.identifier
        label: ["presencetest"]
    }
    PeerModel { id: everyone; endpoint: endpoint }
    PeerModel { id: echoes; endpoint: endpoint; filter: "echo" }
    SignalSpy { id: joinedSpy; target: endpoint; signalName: "peerJoined" }
    SignalSpy { id: leftSpy; target: endpoint; signalName: "peerLeft" }

    Component {
        id: visitorComponent
        Endpoint { identifier: TestBus.identifier; label: ["visitor"] }
    }

    function rowOf(model, pid) {
        for (let row = 0; row < model.count; ++row) {
            if (model.data(model.index(row, 0), PeerModel.PidRole) === pid)
                return row
        }
        return -1
    }

    function test_echoIsListed() {
        verify(endpoint.watchingPeers)  // the models turned it on
        tryVerify(() => rowOf(echoes, TestBus.echoPid) >= 0, 5000)
        compare(echoes.count, 1)
        const index = echoes.index(0, 0)
        compare(echoes.data(index, PeerModel.LabelRole), "echo")
        verify(echoes.data(index, PeerModel.EndpointIdRole) > 0)
        const peer = echoes.data(index, PeerModel.PeerRole)
        compare(peer.pid, TestBus.echoPid)
        compare(peer.label.names, ["echo"])
        verify(peer.joinedAt <= new Date())
        const listed = endpoint.peers().filter(p => p.pid === TestBus.echoPid)
        compare(listed.length, 1)
    }

    function test_filter() {
        compare(echoes.errorString, "")
        echoes.filter = "nobody"
        compare(echoes.count, 0)
        echoes.filter = "echo &&"
        compare(echoes.count, 0)
        verify(echoes.errorString.length > 0)
        echoes.filter = "echo"
        tryCompare(echoes, "count", 1)
    }

    function test_joinAndLeave() {
        joinedSpy.clear()
        leftSpy.clear()
        const before = everyone.count
        const visitor = visitorComponent.createObject(testCase)
        joinedSpy.wait(5000)
        compare(joinedSpy.signalArguments[0][0].label.names, ["visitor"])
        tryCompare(everyone, "count", before + 1)
        const id = joinedSpy.signalArguments[0][0].endpointId
        visitor.leave()
        leftSpy.wait(5000)
        compare(leftSpy.signalArguments[0][0].endpointId, id)
        tryCompare(everyone, "count", before)
        visitor.destroy()
    }

    function test_requestResolves() {
        let reply = null
        endpoint.request(Selector.unicast("echo"), "ping", 5000).then(r => reply = r)
        tryVerify(() => reply !== null, 5000)
        compare(reply.payload, "re:ping")
        compare(reply.senderPid, TestBus.echoPid)
    }

    function test_requestWithAnObject() {
        let reply = null
        endpoint.request(Selector.unicast("echo"), { job: 7, tags: ["a", "b"] }, 5000).then(r => reply = r)
        tryVerify(() => reply !== null, 5000)
        compare(reply.payload.echo.job, 7)
        compare(reply.payload.echo.tags, ["a", "b"])
    }

    function test_requestRejects_data() {
        return [
            { tag: "no route", to: "nobody", payload: "x", timeout: 5000, error: Endpoint.NoRouteError },
            { tag: "timeout", to: "echo", payload: "stall", timeout: 200, error: Endpoint.TimeoutError },
            { tag: "multicast", multicast: true, to: "echo", payload: "x", timeout: 5000,
              error: Endpoint.InvalidArgumentError },
        ]
    }

    function test_requestRejects(data) {
        let failure = null
        const selector = data.multicast ? Selector.multicast(data.to) : Selector.unicast(data.to)
        endpoint.request(selector, data.payload, data.timeout)
            .then(() => failure = "resolved")
            .catch(e => failure = e)
        tryVerify(() => failure !== null, 5000)
        verify(failure instanceof Error)
        compare(failure.error, data.error)
        verify(failure.message.length > 0)
    }
}
