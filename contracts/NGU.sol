// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// NGU test token for the local chain: a self-contained ERC-721 (no library download) with the
/// calls the monitor's tests and benchmark need: mint, batch mint, transfer, safe transfer, burn.
interface IERC721Receiver {
    function onERC721Received(address operator, address from, uint256 tokenId, bytes calldata data)
        external
        returns (bytes4);
}

contract NGU {
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    // keccak256("Transfer(address,address,uint256)"): ERC-20 and ERC-721 share it.
    bytes32 private constant TRANSFER_TOPIC = 0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef;

    string public constant name = "NGU";
    string public constant symbol = "NGU";
    address public immutable minter;

    mapping(uint256 => address) private _owners;
    mapping(address => uint256) private _balances;
    mapping(uint256 => address) private _approvals;
    mapping(address => mapping(address => bool)) private _operators;

    constructor() {
        minter = msg.sender;
    }

    modifier onlyMinter() {
        require(msg.sender == minter, "NGU: not the minter");
        _;
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == 0x80ac58cd || interfaceId == 0x01ffc9a7; // ERC-721, ERC-165
    }

    function balanceOf(address owner) external view returns (uint256) {
        require(owner != address(0), "NGU: zero address");
        return _balances[owner];
    }

    function ownerOf(uint256 tokenId) public view returns (address owner) {
        owner = _owners[tokenId];
        require(owner != address(0), "NGU: no such token");
    }

    function approve(address to, uint256 tokenId) external {
        address owner = ownerOf(tokenId);
        require(msg.sender == owner || _operators[owner][msg.sender], "NGU: not allowed");
        _approvals[tokenId] = to;
        emit Approval(owner, to, tokenId);
    }

    function getApproved(uint256 tokenId) external view returns (address) {
        ownerOf(tokenId);
        return _approvals[tokenId];
    }

    function setApprovalForAll(address operator, bool approved) external {
        _operators[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    function isApprovedForAll(address owner, address operator) external view returns (bool) {
        return _operators[owner][operator];
    }

    function mint(address to, uint256 tokenId) external onlyMinter {
        require(to != address(0), "NGU: mint to zero address");
        _mint(to, tokenId);
        _balances[to] += 1;
    }

    /// Mints `count` consecutive ids from `firstId`: one transaction, `count` Transfer logs.
    function batchMint(address to, uint256 firstId, uint256 count) external onlyMinter {
        require(to != address(0), "NGU: mint to zero address");
        for (uint256 id = firstId; id < firstId + count; ++id) {
            _mint(to, id);
        }
        _balances[to] += count;
    }

    function transferFrom(address from, address to, uint256 tokenId) public {
        require(_allowed(msg.sender, tokenId), "NGU: not allowed");
        require(ownerOf(tokenId) == from, "NGU: from is not the owner");
        require(to != address(0), "NGU: transfer to zero address");
        delete _approvals[tokenId];
        _balances[from] -= 1;
        _balances[to] += 1;
        _owners[tokenId] = to;
        emit Transfer(from, to, tokenId);
    }

    function safeTransferFrom(address from, address to, uint256 tokenId) external {
        safeTransferFrom(from, to, tokenId, "");
    }

    function safeTransferFrom(address from, address to, uint256 tokenId, bytes memory data) public {
        transferFrom(from, to, tokenId);
        if (to.code.length > 0) {
            bytes4 answer = IERC721Receiver(to).onERC721Received(msg.sender, from, tokenId, data);
            require(answer == IERC721Receiver.onERC721Received.selector, "NGU: receiver refused");
        }
    }

    function burn(uint256 tokenId) external {
        address owner = ownerOf(tokenId);
        require(_allowed(msg.sender, tokenId), "NGU: not allowed");
        delete _approvals[tokenId];
        delete _owners[tokenId];
        _balances[owner] -= 1;
        emit Transfer(owner, address(0), tokenId);
    }

    /// Emits an ERC-20-shaped Transfer (3 topics, amount in data) from this address, so tests can
    /// prove the monitor ignores it. It changes no state.
    function emitFungibleTransfer(address from, address to, uint256 amount) external {
        bytes32 topic = TRANSFER_TOPIC;
        assembly {
            mstore(0, amount)
            log3(0, 32, topic, from, to)
        }
    }

    function _mint(address to, uint256 tokenId) private {
        require(_owners[tokenId] == address(0), "NGU: token exists");
        _owners[tokenId] = to;
        emit Transfer(address(0), to, tokenId);
    }

    function _allowed(address spender, uint256 tokenId) private view returns (bool) {
        address owner = ownerOf(tokenId);
        return spender == owner || _approvals[tokenId] == spender || _operators[owner][spender];
    }
}
