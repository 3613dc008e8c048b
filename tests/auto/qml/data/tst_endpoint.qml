// SPDX-License-Identifier: BSD-3-Clause
import QtQuick
import QtTest
import IpmbQt
import IpmbQtTest

TestCase {
    id: testCase
    name: "Endpoint"
    when: endpoint.state === Endpoint.JoinedState

    Endpoint {
        id: endpoint
        identifier: TestBus.identifier
        label: ["qmltest"]
        onMessageReceived: (message) => testCase.last = message
    }

    property var last
    SignalSpy { id: received; target: endpoint; signalName: "messageReceived" }
    SignalSpy { id: errors; target: endpoint; signalName: "errorOccurred" }

    function init() {
        received.clear()
        errors.clear()
        endpoint.clearError()
        errors.clear()
    }

    function test_properties() {
        compare(endpoint.identifier, TestBus.identifier)
        compare(endpoint.label, ["qmltest"])
        compare(endpoint.state, Endpoint.JoinedState)
        compare(endpoint.error, Endpoint.NoError)
        compare(endpoint.errorString, "")
        verify(endpoint.active)
        verify(TestBus.echoPid > 0)
    }

    function test_roundTrip_data() {
        return [
            { tag: "string", value: "hello world" },
            { tag: "number", value: 42.5 },
            { tag: "bool", value: true },
            { tag: "array", value: [1, "two", [3]] },
            { tag: "object", value: { name: "moon", radius: 1737, tags: ["rock"] } },
        ]
    }

    function test_roundTrip(data) {
        verify(endpoint.send(Selector.unicast("echo"), data.value))
        received.wait(5000)
        const message = received.signalArguments[0][0]
        compare(message.payload.echo, data.value)
        compare(message.payloadStatus, Message.PayloadOk)
    }

    function test_arrayBuffer() {
        const bytes = new Uint8Array([0, 1, 2, 255])
        verify(endpoint.send(Selector.unicast("echo"), bytes.buffer))
        received.wait(5000)
        const message = received.signalArguments[0][0]
        compare(message.payload.type, "QByteArray")
        const back = new Uint8Array(message.payload.echo)
        compare(back.length, 4)
        compare(back[3], 255)
    }

    function test_sender() {
        verify(endpoint.send(Selector.multicast("echo || nobody", 100), "who are you"))
        received.wait(5000)
        const message = received.signalArguments[0][0]
        compare(message.senderPid, TestBus.echoPid)
        verify(message.senderId > 0)
        verify(message.senderId !== endpoint.endpointId)
        verify(endpoint.endpointId > 0)
        compare(message.senderLabel.names, ["echo"])
        verify(message.senderLabel.contains("echo"))
        compare(message.selector.mode, Selector.Multicast) // as the echo peer sends its answers
        compare(message.selector.labelOp.text, "qmltest")
        compare(message.selector.labelOp.kind, LabelOp.Leaf)
        compare(message.payloadTypeName, "QVariantMap")
        compare(message.regionCount, 0)
        compare(testCase.last.payload.echo, "who are you")
    }

    Component {
        id: otherEndpoint
        Endpoint {
            identifier: TestBus.identifier
            label: ["other"]
            joinTimeout: 5000
        }
    }

    // A wrong token is refused with a readable reason, through the same error properties.
    function test_wrongToken() {
        const other = createTemporaryObject(otherEndpoint, testCase, { token: "not the bus's" })
        verify(other)
        tryCompare(other, "error", Endpoint.TokenMismatchError, 10000)
        verify(other.errorString.length > 0)
        compare(other.state, Endpoint.UnjoinedState)
    }

    // active: false leaves the bus, true joins again.
    function test_active() {
        const other = createTemporaryObject(otherEndpoint, testCase)
        tryCompare(other, "state", Endpoint.JoinedState, 10000)
        other.active = false
        tryCompare(other, "state", Endpoint.UnjoinedState, 10000)
        other.active = true
        tryCompare(other, "state", Endpoint.JoinedState, 10000)
        compare(endpoint.state, Endpoint.JoinedState) // the others stay
    }

    // An identifier that arrives after the component is complete: no error, then a join.
    function test_identifierLater() {
        const other = createTemporaryObject(otherEndpoint, testCase, { identifier: "" })
        const otherErrors = createTemporaryObject(spyComponent, testCase, { target: other, signalName: "errorOccurred" })
        compare(other.state, Endpoint.UnjoinedState)
        other.identifier = TestBus.identifier
        tryCompare(other, "state", Endpoint.JoinedState, 10000)
        compare(otherErrors.count, 0)
    }

    Component { id: spyComponent; SignalSpy {} }

    function test_parseError() {
        const selector = Selector.unicast("echo &&")
        verify(!selector.valid)
        verify(selector.errorString.length > 0)
        verify(!endpoint.send(selector, "lost?"))
        compare(errors.count, 1)
        compare(endpoint.error, Endpoint.InvalidArgumentError)
        verify(endpoint.errorString.indexOf("echo &&") >= 0, endpoint.errorString)
        endpoint.clearError()
        compare(errors.count, 2)
        compare(endpoint.error, Endpoint.NoError)
        compare(endpoint.state, Endpoint.JoinedState)
    }
}
