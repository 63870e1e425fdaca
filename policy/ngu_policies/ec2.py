"""EC2: instance metadata only with session tokens, no public address, no ingress from the whole internet."""

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .props import UNKNOWN, elements, get, is_unknown, known_strings

INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EIP = "aws:ec2/eip:Eip"
SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ANYWHERE = ("0.0.0.0/0", "::/0")


def _imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (INSTANCE, LAUNCH_TEMPLATE):
        return
    if args.resource_type == INSTANCE and get(args.props, "launchTemplate") is not None:
        return  # the launch template carries the metadata options and is checked itself
    endpoint = get(args.props, "metadataOptions", "httpEndpoint", default="enabled")
    tokens = get(args.props, "metadataOptions", "httpTokens", default="optional")
    if endpoint == "disabled" or is_unknown(tokens) or is_unknown(endpoint):
        return
    if tokens != "required":
        report(
            f'metadataOptions.httpTokens is "{tokens}"; set it to "required" (IMDSv2) so SSRF cannot read the role\'s credentials'
        )


def _no_public_ip(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == INSTANCE:
        if get(props, "launchTemplate") is not None or elements(get(props, "networkInterfaces")):
            return  # the launch template or the attached interfaces decide
        public = get(props, "associatePublicIpAddress")
        if public is True:
            report("associatePublicIpAddress is true; the host needs no public address (reach it with SSM)")
        elif public is None:
            report(
                "associatePublicIpAddress is not set to false: in a subnet that maps public IPs on launch the host gets one"
            )
    elif args.resource_type == LAUNCH_TEMPLATE:
        interfaces = elements(get(props, "networkInterfaces"))
        if interfaces is UNKNOWN:
            return
        # The provider takes this flag as a string: "true", "false" or unset (the subnet decides).
        flags = [str(get(interface, "associatePublicIpAddress")).lower() for interface in interfaces]
        for i, flag in enumerate(flags):
            if flag == "true":
                report(f"networkInterfaces[{i}].associatePublicIpAddress is true; the host needs no public address")
        if "true" not in flags and "false" not in flags and not any(is_unknown(f) for f in flags):
            report(
                "no network interface sets associatePublicIpAddress to false: "
                "in a subnet that maps public IPs on launch every host gets one"
            )
    elif args.resource_type == EIP:
        report("an Elastic IP is a public address; hosts of this stack have none")
    elif args.resource_type == SUBNET and get(props, "mapPublicIpOnLaunch") is True:
        report("mapPublicIpOnLaunch is true: every instance launched here gets a public address")


def _open_cidrs(*values) -> list[str]:
    return [cidr for value in values for cidr in known_strings(value) if cidr in ANYWHERE]


def _no_open_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == SECURITY_GROUP:
        rules = elements(get(props, "ingress"))
        for i, rule in enumerate([] if rules is UNKNOWN else rules):
            open_cidrs = _open_cidrs(get(rule, "cidrBlocks"), get(rule, "ipv6CidrBlocks"))
            if open_cidrs:
                report(f"ingress[{i}] admits {', '.join(open_cidrs)} on ports {_ports(rule)}; admit known sources only")
    elif args.resource_type == SECURITY_GROUP_RULE and get(props, "type") == "ingress":
        open_cidrs = _open_cidrs(get(props, "cidrBlocks"), get(props, "ipv6CidrBlocks"))
        if open_cidrs:
            report(f"ingress rule admits {', '.join(open_cidrs)} on ports {_ports(props)}; admit known sources only")
    elif args.resource_type == INGRESS_RULE:
        open_cidrs = _open_cidrs(get(props, "cidrIpv4"), get(props, "cidrIpv6"))
        if open_cidrs:
            report(f"ingress rule admits {', '.join(open_cidrs)} on ports {_ports(props)}; admit known sources only")


def _ports(rule) -> str:
    low, high = get(rule, "fromPort"), get(rule, "toPort")
    if low is None or is_unknown(low):
        return "all"
    return f"{int(low)}" if low == high else f"{int(low)}-{int(high)}"


ec2_imdsv2 = ResourceValidationPolicy(
    name="ec2-imdsv2-required",
    description="EC2 instances and launch templates require IMDSv2 session tokens.",
    validate=_imdsv2,
)

ec2_no_public_ip = ResourceValidationPolicy(
    name="ec2-no-public-ip",
    description="EC2 hosts of this stack have no public IP address.",
    validate=_no_public_ip,
)

ec2_no_open_ingress = ResourceValidationPolicy(
    name="ec2-no-open-ingress",
    description="No security group admits ingress from 0.0.0.0/0 or ::/0.",
    validate=_no_open_ingress,
)

POLICIES = [ec2_imdsv2, ec2_no_public_ip, ec2_no_open_ingress]
