"""boto3 against the emulator's IoT control plane: every operation it serves and the errors AWS answers.

Run by emulator/tests/controlplane_boto3.rs, which serves the control plane on 127.0.0.1 and passes
    <endpoint URL> <MQTT host>
Exits non-zero with the failing assertion on stderr; on success prints one JSON line with the resources it
left in place for the Rust side to check in the registry.
"""

import json
import sys
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ENDPOINT, MQTT_HOST = sys.argv[1], sys.argv[2]
REGION, ACCOUNT = "us-east-1", "123456789012"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"

iot = boto3.client(
    "iot",
    endpoint_url=ENDPOINT,
    region_name=REGION,
    aws_access_key_id="test",
    aws_secret_access_key="test",
    # One attempt: a retried 5xx would hide the first answer.
    config=Config(retries={"max_attempts": 1, "mode": "standard"}),
)

# The seed's least-privilege policy for the workshop device (reference 4.2 / 7.1).
LAB_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/ratchet"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/device/ratchet/data"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/app/data"},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{ARN}:topic/app/data"},
    ],
})
DENY_PUBLISH = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/device/*"}],
})
THING_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": "iot:Connect",
        "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
        "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
    }],
})


def expect_error(code, status, call, **kwargs):
    """Calls `call(**kwargs)` and returns the error message; fails unless AWS's `code` and `status` came back."""
    try:
        call(**kwargs)
    except ClientError as error:
        got = (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), f"{call.__name__}({kwargs}): expected {code} {status}, got {got}: {error}"
        return error.response["Error"]["Message"]
    raise AssertionError(f"{call.__name__}({kwargs}) succeeded; expected {code}")


def all_pages(call, items, token_in, token_out, **kwargs):
    """Follows the tokens by hand (as code without a paginator does); returns the items and the page count."""
    collected, pages, token = [], 0, None
    while True:
        response = call(**kwargs, **({token_in: token} if token else {}))
        collected += response[items]
        pages += 1
        token = response.get(token_out)
        if not token:
            return collected, pages
        assert pages < 100, "paging does not end"


def raw(method, path, body=None):
    """A plain HTTP request, to see what botocore hides (extra members, unknown routes)."""
    request = urllib.request.Request(ENDPOINT + path, method=method, data=body)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def endpoint():
    assert iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == MQTT_HOST
    assert iot.describe_endpoint()["endpointAddress"] == MQTT_HOST
    expect_error("InvalidRequestException", 400, iot.describe_endpoint, endpointType="iot:CredentialProvider")
    expect_error("InvalidRequestException", 400, iot.describe_endpoint, endpointType="iot:Nonsense")


def things():
    created = iot.create_thing(thingName="lab-thing", attributePayload={"attributes": {"room": "kitchen"}})
    assert created["thingArn"] == f"{ARN}:thing/lab-thing", created
    assert created["thingName"] == "lab-thing"
    again = iot.create_thing(thingName="lab-thing", attributePayload={"attributes": {"room": "kitchen"}})
    assert again["thingId"] == created["thingId"], "CreateThing is idempotent when identical"
    expect_error("ResourceAlreadyExistsException", 409, iot.create_thing,
                 thingName="lab-thing", attributePayload={"attributes": {"room": "attic"}})
    expect_error("InvalidRequestException", 400, iot.create_thing, thingName="bad name!")

    described = iot.describe_thing(thingName="lab-thing")
    assert described["defaultClientId"] == "lab-thing"
    assert described["thingId"] == created["thingId"]
    assert described["attributes"] == {"room": "kitchen"}
    assert described["version"] == 1, described

    iot.update_thing(thingName="lab-thing", attributePayload={"attributes": {"floor": "2"}, "merge": True})
    described = iot.describe_thing(thingName="lab-thing")
    assert described["attributes"] == {"room": "kitchen", "floor": "2"}, described
    assert described["version"] == 2
    expect_error("VersionConflictException", 409, iot.update_thing,
                 thingName="lab-thing", attributePayload={"attributes": {"x": "y"}}, expectedVersion=1)
    expect_error("ResourceNotFoundException", 404, iot.update_thing, thingName="ghost",
                 attributePayload={"attributes": {"x": "y"}})

    for index in range(5):
        iot.create_thing(thingName=f"page-{index}", attributePayload={"attributes": {"batch": "paging"}})
    names, pages = all_pages(iot.list_things, "things", "nextToken", "nextToken", maxResults=2)
    names = [thing["thingName"] for thing in names]
    assert sorted(names) == sorted(["lab-thing"] + [f"page-{i}" for i in range(5)]), names
    assert pages == 3, f"6 things in pages of 2, got {pages} pages"
    paginated = [t["thingName"] for page in iot.get_paginator("list_things").paginate(
        PaginationConfig={"PageSize": 4}) for t in page["things"]]
    assert sorted(paginated) == sorted(names)
    filtered = iot.list_things(attributeName="batch", attributeValue="paging")["things"]
    assert sorted(t["thingName"] for t in filtered) == [f"page-{i}" for i in range(5)]
    assert all(t["thingArn"].startswith(f"{ARN}:thing/page-") and t["version"] == 1 for t in filtered)
    expect_error("InvalidRequestException", 400, iot.list_things, maxResults=251)

    expect_error("ResourceNotFoundException", 404, iot.describe_thing, thingName="ghost")
    expect_error("VersionConflictException", 409, iot.delete_thing, thingName="page-0", expectedVersion=7)
    iot.delete_thing(thingName="page-0")
    expect_error("ResourceNotFoundException", 404, iot.describe_thing, thingName="page-0")


def make_csr():
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr-device")]))
               .sign(key, hashes.SHA256()))
    return request.public_bytes(serialization.Encoding.PEM).decode()


def certificates():
    active = iot.create_keys_and_certificate(setAsActive=True)
    certificate_id = active["certificateId"]
    assert len(certificate_id) == 64 and active["certificateArn"] == f"{ARN}:cert/{certificate_id}"
    assert active["certificatePem"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in active["keyPair"]["PrivateKey"] and "PUBLIC KEY" in active["keyPair"]["PublicKey"]
    description = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    assert description["status"] == "ACTIVE" and description["ownedBy"] == ACCOUNT, description
    assert description["certificatePem"] == active["certificatePem"]
    assert description["validity"]["notBefore"] <= description["creationDate"] < description["validity"]["notAfter"]
    assert description["creationDate"].year >= 2024, "timestamps are epoch seconds"
    assert description["customerVersion"] >= 1 and description["generationId"]

    inactive = iot.create_keys_and_certificate()
    assert iot.describe_certificate(certificateId=inactive["certificateId"])[
        "certificateDescription"]["status"] == "INACTIVE", "setAsActive defaults to false"
    from_csr = iot.create_certificate_from_csr(certificateSigningRequest=make_csr(), setAsActive=True)
    assert from_csr["certificateArn"] == f"{ARN}:cert/{from_csr['certificateId']}"
    assert iot.describe_certificate(certificateId=from_csr["certificateId"])[
        "certificateDescription"]["status"] == "ACTIVE"
    expect_error("InvalidRequestException", 400, iot.create_certificate_from_csr,
                 certificateSigningRequest="not a CSR")

    listed, pages = all_pages(iot.list_certificates, "certificates", "marker", "nextMarker", pageSize=1)
    ids = [c["certificateId"] for c in listed]
    assert sorted(ids) == sorted([certificate_id, inactive["certificateId"], from_csr["certificateId"]]), ids
    assert pages == 3
    ascending = iot.list_certificates(ascendingOrder=True)["certificates"]
    dates = [c["creationDate"] for c in ascending]
    assert dates == sorted(dates), dates
    expect_error("InvalidRequestException", 400, iot.list_certificates, pageSize=1000)

    iot.update_certificate(certificateId=from_csr["certificateId"], newStatus="INACTIVE")
    assert iot.describe_certificate(certificateId=from_csr["certificateId"])[
        "certificateDescription"]["status"] == "INACTIVE"
    expect_error("InvalidRequestException", 400, iot.update_certificate,
                 certificateId=from_csr["certificateId"], newStatus="BOGUS")
    expect_error("CertificateStateException", 406, iot.delete_certificate, certificateId=certificate_id)
    expect_error("ResourceNotFoundException", 404, iot.describe_certificate, certificateId="0" * 64)
    expect_error("InvalidRequestException", 400, iot.describe_certificate, certificateId="z" * 64)
    iot.delete_certificate(certificateId=from_csr["certificateId"])
    expect_error("ResourceNotFoundException", 404, iot.describe_certificate,
                 certificateId=from_csr["certificateId"])
    return certificate_id, inactive["certificateId"]


def policies():
    created = iot.create_policy(policyName="lab-policy", policyDocument=LAB_POLICY)
    assert created["policyVersionId"] == "1" and created["policyArn"] == f"{ARN}:policy/lab-policy"
    expect_error("ResourceAlreadyExistsException", 409, iot.create_policy,
                 policyName="lab-policy", policyDocument=LAB_POLICY)
    expect_error("MalformedPolicyException", 400, iot.create_policy, policyName="broken",
                 policyDocument="{not json")
    expect_error("MalformedPolicyException", 400, iot.create_policy, policyName="broken",
                 policyDocument=json.dumps({"Version": "2012-10-17"}))
    got = iot.get_policy(policyName="lab-policy")
    assert got["defaultVersionId"] == "1" and json.loads(got["policyDocument"]) == json.loads(LAB_POLICY)
    assert got["creationDate"] <= got["lastModifiedDate"] and got["generationId"]
    expect_error("ResourceNotFoundException", 404, iot.get_policy, policyName="ghost")

    for version in range(2, 6):
        made = iot.create_policy_version(policyName="lab-policy", policyDocument=DENY_PUBLISH)
        assert made["policyVersionId"] == str(version) and made["isDefaultVersion"] is False, made
    expect_error("VersionsLimitExceededException", 409, iot.create_policy_version,
                 policyName="lab-policy", policyDocument=DENY_PUBLISH)
    versions = iot.list_policy_versions(policyName="lab-policy")["policyVersions"]
    assert sorted(v["versionId"] for v in versions) == ["1", "2", "3", "4", "5"]
    assert [v["versionId"] for v in versions if v["isDefaultVersion"]] == ["1"]
    assert json.loads(iot.get_policy_version(policyName="lab-policy", policyVersionId="2")[
        "policyDocument"]) == json.loads(DENY_PUBLISH)
    expect_error("ResourceNotFoundException", 404, iot.get_policy_version,
                 policyName="lab-policy", policyVersionId="99")

    iot.set_default_policy_version(policyName="lab-policy", policyVersionId="2")
    assert iot.get_policy(policyName="lab-policy")["defaultVersionId"] == "2"
    expect_error("DeleteConflictException", 409, iot.delete_policy_version,
                 policyName="lab-policy", policyVersionId="2")
    for version in ["3", "4", "5"]:
        iot.delete_policy_version(policyName="lab-policy", policyVersionId=version)
    made = iot.create_policy_version(policyName="lab-policy", policyDocument=LAB_POLICY, setAsDefault=True)
    assert made["isDefaultVersion"] is True
    iot.delete_policy_version(policyName="lab-policy", policyVersionId="2")
    version = iot.get_policy_version(policyName="lab-policy", policyVersionId=made["policyVersionId"])
    assert version["isDefaultVersion"] and version["policyName"] == "lab-policy"

    iot.create_policy(policyName="deny-publish", policyDocument=DENY_PUBLISH)
    iot.create_policy(policyName="thing-policy", policyDocument=THING_POLICY)
    names, pages = all_pages(iot.list_policies, "policies", "marker", "nextMarker", pageSize=1)
    assert sorted(p["policyName"] for p in names) == ["deny-publish", "lab-policy", "thing-policy"]
    assert pages == 3
    # A policy with versions besides the default cannot be deleted.
    iot.create_policy(policyName="versioned", policyDocument=LAB_POLICY)
    iot.create_policy_version(policyName="versioned", policyDocument=DENY_PUBLISH)
    expect_error("DeleteConflictException", 409, iot.delete_policy, policyName="versioned")
    iot.delete_policy_version(policyName="versioned", policyVersionId="2")
    iot.delete_policy(policyName="versioned")
    expect_error("ResourceNotFoundException", 404, iot.get_policy, policyName="versioned")


def attachments(certificate_id, spare_id):
    certificate_arn = f"{ARN}:cert/{certificate_id}"
    iot.attach_policy(policyName="lab-policy", target=certificate_arn)
    iot.attach_policy(policyName="thing-policy", target=certificate_arn)
    expect_error("ResourceNotFoundException", 404, iot.attach_policy, policyName="ghost", target=certificate_arn)
    expect_error("InvalidRequestException", 400, iot.attach_policy, policyName="lab-policy",
                 target="arn:aws:iot:us-east-1:123456789012:thinggroup/nope")
    attached, pages = all_pages(iot.list_attached_policies, "policies", "marker", "nextMarker",
                                target=certificate_arn, pageSize=1)
    assert sorted(p["policyName"] for p in attached) == ["lab-policy", "thing-policy"] and pages == 2
    assert iot.list_targets_for_policy(policyName="lab-policy")["targets"] == [certificate_arn]
    expect_error("DeleteConflictException", 409, iot.delete_policy, policyName="lab-policy")

    iot.attach_thing_principal(thingName="lab-thing", principal=certificate_arn)
    expect_error("ResourceNotFoundException", 404, iot.attach_thing_principal,
                 thingName="ghost", principal=certificate_arn)
    assert iot.list_thing_principals(thingName="lab-thing")["principals"] == [certificate_arn]
    assert iot.list_principal_things(principal=certificate_arn)["things"] == ["lab-thing"]

    # The spare certificate: attached and detached again, through both generations of the API.
    spare_arn = f"{ARN}:cert/{spare_id}"
    iot.attach_principal_policy(policyName="deny-publish", principal=spare_arn)
    assert [p["policyName"] for p in iot.list_principal_policies(principal=spare_arn)["policies"]] == [
        "deny-publish"]
    iot.attach_thing_principal(thingName="page-1", principal=spare_arn, thingPrincipalType="EXCLUSIVE_THING")
    expect_error("DeleteConflictException", 409, iot.delete_certificate, certificateId=spare_id)
    iot.detach_thing_principal(thingName="page-1", principal=spare_arn)
    assert iot.list_principal_things(principal=spare_arn)["things"] == []
    iot.detach_principal_policy(policyName="deny-publish", principal=spare_arn)
    iot.attach_policy(policyName="deny-publish", target=spare_arn)
    iot.detach_policy(policyName="deny-publish", target=spare_arn)
    assert iot.list_attached_policies(target=spare_arn)["policies"] == []
    assert iot.list_targets_for_policy(policyName="deny-publish")["targets"] == []


def authorization(certificate_id):
    certificate_arn = f"{ARN}:cert/{certificate_id}"

    def decisions(client_id, infos, **kwargs):
        results = iot.test_authorization(principal=certificate_arn, clientId=client_id, authInfos=infos,
                                         **kwargs)["authResults"]
        return [result["authDecision"] for result in results], results

    infos = [
        {"actionType": "CONNECT", "resources": [f"{ARN}:client/ratchet"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/device/ratchet/data"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/somewhere/else"]},
        {"actionType": "SUBSCRIBE", "resources": [f"{ARN}:topicfilter/app/data"]},
        {"actionType": "RECEIVE", "resources": [f"{ARN}:topic/app/data"]},
    ]
    got, results = decisions("ratchet", infos)
    assert got == ["ALLOWED", "ALLOWED", "IMPLICIT_DENY", "ALLOWED", "ALLOWED"], got
    assert [p["policyName"] for p in results[1]["allowed"]["policies"]] == ["lab-policy"]
    assert sorted(p["policyName"] for p in results[2]["denied"]["implicitDeny"]["policies"]) == [
        "lab-policy", "thing-policy"]
    assert results[0]["authInfo"] == infos[0]

    # Several resources in one authInfo: all must be allowed.
    both = [{"actionType": "PUBLISH", "resources": [f"{ARN}:topic/device/ratchet/data", f"{ARN}:topic/x"]}]
    got, results = decisions("ratchet", both)
    assert got == ["IMPLICIT_DENY"], got
    assert [p["policyName"] for p in results[0]["allowed"]["policies"]] == ["lab-policy"], results

    got, results = decisions("ratchet", infos[1:2], policyNamesToAdd=["deny-publish"])
    assert got == ["EXPLICIT_DENY"], got
    assert [p["policyName"] for p in results[0]["denied"]["explicitDeny"]["policies"]] == ["deny-publish"]
    got, _ = decisions("ratchet", infos[1:2], policyNamesToSkip=["lab-policy"])
    assert got == ["IMPLICIT_DENY"], got

    # iot:Connection.Thing.* come from the attached thing when the client id is its name (reference 4.4).
    as_thing = [{"actionType": "CONNECT", "resources": [f"{ARN}:client/lab-thing"]}]
    assert decisions("lab-thing", as_thing)[0] == ["ALLOWED"]
    assert decisions("someone-else", [{"actionType": "CONNECT", "resources": [f"{ARN}:client/someone-else"]}])[
        0] == ["IMPLICIT_DENY"]

    expect_error("ResourceNotFoundException", 404, iot.test_authorization,
                 principal=f"{ARN}:cert/{'0' * 64}", authInfos=infos[:1])
    expect_error("ResourceNotFoundException", 404, iot.test_authorization,
                 principal=certificate_arn, authInfos=infos[:1], policyNamesToAdd=["ghost"])
    expect_error("InvalidRequestException", 400, iot.test_authorization,
                 principal=certificate_arn, authInfos=[{"resources": [f"{ARN}:client/x"]}])

    # What botocore drops: the statements that decided.
    status, _, body = raw("POST", "/test-authorization?clientId=ratchet", json.dumps({
        "principal": certificate_arn, "authInfos": infos[1:2], "policyNamesToAdd": ["deny-publish"],
    }).encode())
    assert status == 200, body
    explanation = body["authResults"][0]["emulatorExplanation"]["resources"][0]
    assert explanation["decision"] == "EXPLICIT_DENY", explanation
    deciding = explanation["decidingStatements"]
    assert [(s["policyName"], s["statementIndex"], s["effect"]) for s in deciding] == [
        ("deny-publish", 0, "Deny")], deciding
    assert deciding[0]["statement"]["Resource"] == f"{ARN}:topic/device/*"


def rules():
    listed = iot.list_topic_rules()["rules"]
    by_name = {rule["ruleName"]: rule for rule in listed}
    assert by_name["DisconnectWill"]["topicPattern"] == "device/+/lwt", listed
    assert by_name["DisconnectWill"]["ruleArn"] == f"{ARN}:rule/DisconnectWill"
    paged, pages = all_pages(iot.list_topic_rules, "rules", "nextToken", "nextToken", maxResults=1)
    assert [r["ruleName"] for r in paged] == sorted(by_name) and pages == len(by_name)
    assert [r["ruleName"] for r in iot.list_topic_rules(topic="device/+/lwt")["rules"]] == ["DisconnectWill"]
    rule = iot.get_topic_rule(ruleName="DisconnectWill")
    assert rule["ruleArn"] == f"{ARN}:rule/DisconnectWill"
    assert "FROM 'device/+/lwt'" in rule["rule"]["sql"], rule
    assert rule["rule"]["actions"][0]["lambda"]["functionArn"].startswith(
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"), rule
    expect_error("UnauthorizedException", 401, iot.get_topic_rule, ruleName="NoSuchRule")


def unknown_route():
    status, headers, body = raw("GET", "/no/such/operation")
    lowered = {key.lower(): value for key, value in headers.items()}
    assert status == 404 and lowered.get("x-amzn-errortype") == "UnknownOperationException", (status, headers)
    assert "GET /no/such/operation" in body["message"], body


def main():
    endpoint()
    things()
    certificate_id, spare_id = certificates()
    policies()
    attachments(certificate_id, spare_id)
    authorization(certificate_id)
    rules()
    unknown_route()
    print(json.dumps({"certificateId": certificate_id, "thingName": "lab-thing", "policy": "lab-policy"}))


if __name__ == "__main__":
    main()
